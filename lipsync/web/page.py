"""The page: a tab that lip-syncs a file, a Live tab, and the HTTP API, each its own function over
`service.App` (what they do, without Gradio). Options get their controls from their fields
(`control`, see `lipsync.options`). Gradio is imported by the caller (`build`) and handed in.
"""
import functools
import logging
import traceback
from typing import Callable, List, Optional, Sequence, Tuple

from .. import generators
from ..errors import Cancelled, LipSyncError
from ..generators.options import SyncOptions
from ..options import describe
from ..run_options import RunOptions
from .service import FIGURES_HELP, LIVE_CHUNK_S, App, figures_table, one_line, stage_reporter
from .sessions import Sessions

QUEUE_SIZE = 16  # jobs waiting at most; a page asking for more is told the queue is full
log = logging.getLogger(__name__)


def build(sessions: Sessions):
    """The Gradio Blocks of the page and the API."""
    import gradio as gr

    app = App(sessions)

    def on_unload(request: gr.Request):
        sessions.end(request.session_hash)

    with gr.Blocks(title="lipsync", analytics_enabled=False) as demo:
        gr.Markdown("# lipsync\nMake the face in a video or photo speak a new sound, or a text. "
                    "Everything runs on this computer; nothing is sent anywhere.")
        with gr.Tabs():
            file_tab(gr, app, sessions)
            live_tab(gr, app)
        api(gr, app)
        demo.unload(on_unload)
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    return demo


def guarded(gr, fn, uploads_of: Callable[..., Sequence[Optional[str]]]):
    """`fn` with every failure as gr.Error carrying one line (the traceback of an unexpected
    one goes to the server's log only)."""

    @functools.wraps(fn)  # Gradio reads fn's signature to pass the request and the progress bar
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Cancelled:
            raise gr.Error("stopped: no output written", duration=None, print_exception=False) from None
        except LipSyncError as exc:
            raise gr.Error(one_line(exc, uploads_of(*args)), duration=None, print_exception=False) from None
        except Exception as exc:  # noqa: BLE001: the page shows one line, the log the rest
            log.error("%s", traceback.format_exc())
            raise gr.Error(one_line(exc, uploads_of(*args)), duration=None, print_exception=False) from None

    return run

def progress_of(progress):
    """A pipeline progress callback that moves Gradio's progress bar."""
    return stage_reporter(lambda fraction, text: progress(fraction, desc=text))


def file_tab(gr, app: App, sessions: Sessions) -> None:
    """The Lip-sync tab: a video or photo and a sound or text in, a preview, the result, its figures."""
    models = [(f"{name}: {generators.DESCRIPTIONS.get(name, '')}", name) for name in generators.names()]

    def chosen(media_tab, video, photo, sound_tab, audio, text):
        """The page's video or photo and sound or text: the one filled in, or the visible tab's when both are."""
        media = (photo if media_tab == "photo" else video) or video or photo
        typed = bool(text and text.strip())
        if (sound_tab == "text" and typed) or not audio:
            return media, None, text
        return media, audio, None

    def queued(media_tab, video, photo, sound_tab, audio, text, session: str) -> None:
        """A page's job enters the queue: its uploads stay until it has run."""
        media, audio, _ = chosen(media_tab, video, photo, sound_tab, audio, text)
        sessions.use(session, [media, audio])
        sessions.hold(session)

    def on_preview_queued(media_tab, video, photo, sound_tab, audio, text, request: gr.Request):
        queued(media_tab, video, photo, sound_tab, audio, text, request.session_hash)
        return gr.update(value=None, label="preview")

    def on_preview(media_tab, video, photo, sound_tab, audio, text, voice, rate, model, face_index, pad_top,
                   pad_bottom, pad_left, pad_right, request: gr.Request, progress=gr.Progress()):
        media, audio, text = chosen(media_tab, video, photo, sound_tab, audio, text)
        image, caption = app.preview(request.session_hash, media, audio, text, voice=voice or None, rate=rate,
                                     model=model, face_index=face_index, pads=(pad_top, pad_bottom, pad_left, pad_right),
                                     progress=progress_of(progress), held=True)
        return gr.update(value=image, label=caption)

    def on_run_queued(media_tab, video, photo, sound_tab, audio, text, request: gr.Request):
        queued(media_tab, video, photo, sound_tab, audio, text, request.session_hash)
        hidden = gr.update(value=None, visible=False)
        return None, "", hidden, hidden, None  # the last run's result, figures and plot go

    def on_run(media_tab, video, photo, sound_tab, audio, text, voice, rate, model, personalize, face_index,
               pad_top, pad_bottom, pad_left, pad_right, crf, request: gr.Request, progress=gr.Progress()):
        media, audio, text = chosen(media_tab, video, photo, sound_tab, audio, text)
        outfile, summary, sound = app.lip_sync(
            request.session_hash, media, audio, text, voice=voice or None, rate=rate, model=model,
            personalize=personalize, face_index=face_index, pads=(pad_top, pad_bottom, pad_left, pad_right),
            crf=crf, progress=progress_of(progress), held=True)
        return outfile, summary, {"result": outfile, "audio": sound}

    def on_measure(state, reference, measure_it, request: gr.Request, progress=gr.Progress()):
        if not measure_it or not state:
            return gr.update(value="", visible=False), gr.update(value=None, visible=False)
        progress(0.0, desc="measuring the result")
        figures, plot = app.measure(request.session_hash, state["result"], state["audio"], reference)
        return gr.update(value=f"{figures_table(figures)}\n\n{FIGURES_HELP}", visible=True), \
            gr.update(value=plot, visible=True)

    def on_stop(request: gr.Request):
        app.stop(request.session_hash)
        return "stopped: no output written"

    uploads_page = lambda *a: a[1:3] + a[4:5]  # noqa: E731: the video, photo and sound of a page event
    media_tab, sound_tab = gr.State("video"), gr.State("sound")
    with gr.Tab("Lip-sync", id="file", elem_id="file_tab"):
        with gr.Row():
            with gr.Column():
                with gr.Tabs():
                    with gr.Tab("Video", id="video") as video_tab:
                        video = gr.Video(label="video", sources=["upload", "webcam"], elem_id="video")
                    with gr.Tab("Photo", id="photo") as photo_tab:
                        photo = gr.Image(label="photo", type="filepath", sources=["upload", "webcam"],
                                         elem_id="photo")
                        # handed on as uploaded: the pipeline reads it and says in one line what is wrong with
                        # a bad one, where Gradio's own decoding fails with a bare "Error" (an instance
                        # attribute, as a subclass would make Gradio write a .pyi file beside this module)
                        photo.preprocess = lambda payload: None if payload is None else payload.path
                with gr.Tabs():
                    with gr.Tab("Sound", id="sound") as audio_tab:
                        audio = gr.Audio(label="sound", type="filepath", sources=["upload", "microphone"],
                                         elem_id="audio")
                    with gr.Tab("Text", id="text") as text_tab:
                        text = gr.Textbox(label="text to speak", lines=3, elem_id="text")
                        with gr.Row():
                            voice = gr.Dropdown(_voices(), value="", label="voice")
                            rate = gr.Slider(80, 400, value=175, step=5, label="rate (words a minute)")
                with gr.Accordion("Advanced", open=False):
                    model = gr.Dropdown(models, value=generators.names()[0], label="model")
                    # the controls of options come from their fields (lipsync.options): one definition
                    personalize = control(gr, SyncOptions, "personalize",
                                          label="personalize on the video's own speech")
                    face_index = control(gr, RunOptions, "face_index",
                                         label="face index (empty: the largest face; 0: the leftmost)")
                    with gr.Row():
                        pads = control(gr, SyncOptions, "pads")
                    crf = control(gr, RunOptions, "crf", label="quality (crf: lower is better, larger)",
                                  maximum=51)
                with gr.Accordion("Measure", open=False):
                    measure_it = gr.Checkbox(True, label="measure the result (sync offset and confidence)")
                    reference = gr.Video(label="reference video: the real footage, for the other figures",
                                         sources=["upload"])
                with gr.Row():
                    preview_button = gr.Button("Preview one frame", elem_id="preview")
                    run_button = gr.Button("Lip-sync", variant="primary", elem_id="run")
                    stop_button = gr.Button("Stop", variant="stop", elem_id="stop")
            with gr.Column():
                preview_image = gr.Image(label="preview", interactive=False, height=240,
                                         elem_id="preview_image")
                result = gr.Video(label="result", interactive=False, elem_id="result")
                summary = gr.Textbox(label="summary", interactive=False, elem_id="summary")
                figures = gr.Markdown(visible=False, elem_id="figures")
                plot = gr.Image(label="mouth opening over time", interactive=False, visible=False,
                                elem_id="plot")
    run_state = gr.State(None)
    for tab, state, name in ((video_tab, media_tab, "video"), (photo_tab, media_tab, "photo"),
                             (audio_tab, sound_tab, "sound"), (text_tab, sound_tab, "text")):
        tab.select(lambda name=name: name, None, state, queue=False, api_visibility="private")
    picks = [media_tab, video, photo, sound_tab, audio, text]
    page_inputs = picks + [voice, rate, model]
    preview_event = preview_button.click(
        on_preview_queued, picks, preview_image, queue=False, api_visibility="private").then(
        guarded(gr, on_preview, uploads_page), page_inputs + [face_index] + pads, preview_image,
        concurrency_id="work", api_visibility="private")
    run = run_button.click(
        on_run_queued, picks, [result, summary, figures, plot, run_state], queue=False,
        api_visibility="private").then(
        guarded(gr, on_run, uploads_page), page_inputs + [personalize, face_index] + pads + [crf],
        [result, summary, run_state], concurrency_id="work", api_visibility="private")
    measure = run.success(guarded(gr, on_measure, lambda *a: a[1:2]), [run_state, reference, measure_it],
                          [figures, plot], concurrency_id="work", api_visibility="private")
    stop_button.click(on_stop, None, summary, queue=False, cancels=[preview_event, run, measure],
                      api_visibility="private")


def live_tab(gr, app: App) -> None:
    """The Live tab: an avatar prepared once, then speaking what the microphone hears."""
    def on_live_prepare(avatar, request: gr.Request, progress=gr.Progress()):
        return app.live_prepare(request.session_hash, avatar, progress=progress_of(progress))

    def on_live_chunk(chunk, request: gr.Request):
        if chunk is None:
            return gr.skip(), gr.skip()
        image, status = app.live_chunk(request.session_hash, *chunk)
        return (gr.skip() if image is None else image), status

    def on_live_stop(request: gr.Request):
        return app.live_stop(request.session_hash)

    with gr.Tab("Live", id="live", elem_id="live_tab"):
        gr.Markdown("The avatar speaks what the microphone hears, as you speak (the page shows about "
                    f"{1 / LIVE_CHUNK_S:.0f} frames a second; `lip_sync.py --live` streams every frame).")
        with gr.Row():
            with gr.Column():
                live_avatar = gr.File(label="avatar: a video or photo", file_types=["video", "image"],
                                      elem_id="live_avatar")
                live_prepare = gr.Button("Prepare", elem_id="live_prepare")
                live_mic = gr.Audio(label="microphone", sources=["microphone"], streaming=True, type="numpy",
                                    elem_id="live_mic")
            with gr.Column():
                live_out = gr.Image(label="avatar", interactive=False, elem_id="live_out")
                live_status = gr.Textbox(label="status", interactive=False, elem_id="live_status")
    live_prepare.click(guarded(gr, on_live_prepare, lambda *a: a[:1]), [live_avatar], [live_out, live_status],
                       concurrency_id="work", api_visibility="private")
    live_mic.stream(guarded(gr, on_live_chunk, lambda *a: ()), [live_mic], [live_out, live_status],
                    stream_every=LIVE_CHUNK_S, time_limit=None, concurrency_id="live", api_visibility="private")
    live_mic.stop_recording(on_live_stop, None, live_status, queue=False, api_visibility="private")


def api(gr, app: App) -> None:
    """The HTTP API's one endpoint, /lip_sync(video, audio, text, model, personalize), on hidden inputs."""
    def api_lip_sync(video, audio=None, text=None, model="sync", personalize="auto", request: gr.Request = None,
                     progress=gr.Progress()):
        outfile, summary, _ = app.lip_sync(request.session_hash, video, audio, text, model=model or "sync",
                                           personalize=personalize or "auto", progress=progress_of(progress))
        return outfile, summary

    with gr.Row(visible=False):  # the API's own inputs: /lip_sync(video, audio, text, model, personalize)
        api_video, api_audio = gr.File(label="video"), gr.File(label="audio")
        api_text, api_model = gr.Textbox(label="text"), gr.Textbox(generators.names()[0], label="model")
        api_personalize = gr.Textbox("auto", label="personalize")
        api_result, api_summary = gr.Video(label="result"), gr.Textbox(label="summary")
        api_button = gr.Button()

    api_button.click(guarded(gr, api_lip_sync, lambda *a: a[:2]),
                     [api_video, api_audio, api_text, api_model, api_personalize], [api_result, api_summary],
                     api_name="lip_sync", concurrency_id="work",
                     api_description="Make the face in `video` (a video or photo file) speak `audio` (a sound "
                                     "file) or `text`; returns the result video and a summary line.")


def control(gr, cls: type, name: str, label: Optional[str] = None, maximum: Optional[float] = None):
    """The page's control of option `name` of options class `cls`, made from its field (type,
    default, choices, help): a radio button group for choices, a number for a whole number
    (a slider when it has a `maximum`), a row of numbers for several."""
    field = describe(cls)[name]
    label = label or name.replace("_", " ")
    if field.choices:
        return gr.Radio(list(field.choices), value=field.default, label=label, info=field.help)
    if field.count > 1:
        sides = field.metavar or [str(k) for k in range(field.count)]
        return [gr.Number(v, precision=0, label=f"{name.rstrip('s')} {side.lower()}")
                for v, side in zip(field.default, sides)]
    if maximum is not None:
        return gr.Slider(0, maximum, value=field.default, step=1 if field.kind is int else None, label=label,
                         info=field.help)
    return gr.Number(field.default, precision=0 if field.kind is int else None, minimum=0, label=label,
                     info=field.help)


def _voices() -> List[Tuple[str, str]]:
    """(label, value) of the voice choices: the text's own language first, then tts's list."""
    choices = [("from the text's script (English for Latin)", "")]
    try:
        from ..io.tts import list_voices

        choices += [(f"{v.name} ({', '.join(v.languages)})", v.id) for v in list_voices()]
    except LipSyncError as exc:  # no eSpeak: typed text cannot be spoken, the rest works
        log.warning("no voices: %s", exc)
    return choices
