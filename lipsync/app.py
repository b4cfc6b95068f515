"""The web page and HTTP API: `python app.py` (or `lipsync-ui`) serves both on
http://127.0.0.1:7860, offline.

The page takes a video or photo (uploaded or recorded) and a sound (uploaded, recorded, or
text spoken by `tts`), shows one lip-synced frame before the long run, runs the pipeline with
a progress bar per stage, plays the result and measures it with `evaluate`. The API is one
queued endpoint, `/lip_sync(video, audio, text, model, personalize)`, whose first output is
the result video; `gradio_client` and plain HTTP both call it (see the README).

Nothing leaves the machine: the server listens on 127.0.0.1 unless told otherwise, Gradio's
analytics and share links are off, and the page loads only what the server serves. Uploads
and results live in one temporary folder per app (a sub-folder per browser session), removed
when the session ends, after `keep_minutes`, and when the app stops. One job runs at a time;
the others wait in the queue, which tells each page its place.

Gradio is an optional extra (`pip install -r requirements-ui.txt`); this module imports it
only inside `build` and `serve`.
"""
import argparse
import contextlib
import errno
import functools
import importlib.util
import itertools
import logging
import os
import shutil
import socket
import sys
import threading
import time
import traceback
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import generators
from .errors import Cancelled, InputError, LipSyncError
from .generators.base import PERSONALIZE_MODES
from .io.media import DEFAULT_CRF

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_UPLOAD_MB = 500  # per file
KEEP_MINUTES = 60  # a session idle this long with no job queued or running is removed, like other files this old
QUEUE_SIZE = 16  # jobs waiting at most; a page asking for more is told the queue is full
LIVE_LOOP_SECONDS = 4.0  # a live avatar loops over this much of its video (held in memory per page)
LIVE_CHUNK_S = 0.1  # the page sends the microphone's sound this often, and shows the newest frame each time
STAGES = {"speaking": "speaking the text", "tracking face": "tracking the face", "personalizing": "personalizing",
          "lip-syncing": "rendering"}  # the pipeline's stage names, as the page shows them
FIGURES = {  # evaluate's keys the page shows, and what they mean
    "av_offset_frames": "sync offset (frames; 0 is in sync)",
    "av_sync_confidence": "sync confidence (higher is surer)",
    "speaking_share": "share of frames that look like speech",
    "bilabial_closure": "lips close on m/b/p (share)",
    "frames_without_face": "frames without a face",
    "mouth_corr": "mouth opening vs reference (correlation)",
    "closed_f1": "closed mouth vs reference (F1)",
    "lmd": "landmark distance to reference (lower is better)",
    "lower_psnr": "lower face vs reference (PSNR, dB)",
    "upper_psnr": "upper face vs reference (PSNR, dB)",
    "audio_offset_ms": "sound offset vs the given sound (ms)",
}
FIGURES_HELP = ("In sync: an offset within a frame or two of 0, with a confidence above about 1 (below 1, no clear "
                "sync was found). A result that reads as speech has a speech share above one half.")
log = logging.getLogger(__name__)


class Sessions:
    """The app's temporary files, all under `root`: Gradio's uploads (a folder per upload), the
    face-track cache, and a folder of results per browser session (`root`/sessions/<id>).

    A session's results, and the uploads it used that no other session has used or uploaded
    again since, are removed when the session ends (`end`: its page closed). `expire` ends the
    sessions idle for `keep_s` with no job queued or running (API callers have no page to close)
    and removes the other files older than that.
    """

    def __init__(self, root: str, keep_s: float):
        self.root, self.keep_s = root, keep_s
        self.sessions = os.path.join(root, "sessions")
        self._lock = threading.Lock()
        self._stop: Dict[str, threading.Event] = {}  # session -> its jobs' stop flag
        self._uploads: Dict[str, Dict[str, int]] = {}  # upload path -> {session: its mtime when used}
        self._seen: Dict[str, float] = {}  # session -> time of its last activity
        self._jobs: Dict[str, int] = {}  # session -> jobs queued or running
        self._names = itertools.count(1)
        self.on_end: List[Callable[[str], None]] = []  # told of each session that ends (closed or expired)

    def folder(self, session: str) -> str:
        path = os.path.join(self.sessions, _safe(session))
        os.makedirs(path, exist_ok=True)
        return path

    def result_name(self, session: str, stem: str, suffix: str = ".mp4") -> str:
        """A new file name in the session's folder: <stem>_lipsync_<time>_<n><suffix>."""
        return os.path.join(self.folder(session), f"{stem}_lipsync_{time.strftime('%H%M%S')}_{next(self._names)}"
                                                  f"{suffix}")

    def use(self, session: str, paths: Sequence[Optional[str]]) -> None:
        """Records that `session` uses these uploads (as they are now: an upload of the same
        bytes by another page replaces the file, and `end` then leaves it to that page)."""
        with self._lock:
            self._seen[session] = time.time()
            for path in paths:
                if path and _inside(path, self.root):
                    with contextlib.suppress(OSError):
                        self._uploads.setdefault(os.path.abspath(path), {})[session] = os.stat(path).st_mtime_ns

    def hold(self, session: str) -> None:
        """A job of `session` is queued: its files stay until the job has run (`job(held=True)`)."""
        with self._lock:
            self._jobs[session] = self._jobs.get(session, 0) + 1
            self._seen[session] = time.time()

    @contextlib.contextmanager
    def job(self, session: str, held: bool = False) -> Iterator[threading.Event]:
        """While a job of `session` runs: yields its stop flag (cleared: a Stop pressed before
        it started stopped the page's queued jobs, not this one); the session does not expire."""
        if not held:
            self.hold(session)
        with self._lock:
            stop = self._stop.setdefault(session, threading.Event())
            stop.clear()
        try:
            yield stop
        finally:
            with self._lock:
                self._jobs[session] = max(0, self._jobs.get(session, 0) - 1)
                self._seen[session] = time.time()

    def stop(self, session: str) -> None:
        """Stops the job of `session` that is running, if any."""
        with self._lock:
            stop = self._stop.get(session)
        if stop is not None:
            stop.set()

    def stop_all(self) -> None:
        with self._lock:
            flags = list(self._stop.values())
        for flag in flags:
            flag.set()

    def end(self, session: str) -> None:
        """The page was closed: stop its job and remove its results, and the uploads it used
        that no other page has used or uploaded again since."""
        self.stop(session)
        for hook in self.on_end:
            hook(session)
        with self._lock:
            self._stop.pop(session, None)
            self._seen.pop(session, None)
            self._jobs.pop(session, None)
            mine = []
            for path, users in list(self._uploads.items()):
                if session not in users:
                    continue
                seen = users.pop(session)
                if not users:
                    del self._uploads[path]
                    with contextlib.suppress(OSError):
                        if os.stat(path).st_mtime_ns == seen:
                            mine.append(path)
        shutil.rmtree(os.path.join(self.sessions, _safe(session)), ignore_errors=True)
        for path in mine:  # Gradio keeps each upload in a folder of its own
            folder = os.path.dirname(path)
            shutil.rmtree(folder, ignore_errors=True) if folder != self.root else _remove(path)

    def expire(self, now: Optional[float] = None) -> List[str]:
        """Ends the sessions idle for keep_s with no job, then removes the files older than
        keep_s that no live session uses; returns what it removed."""
        now = time.time() if now is None else now
        with self._lock:
            idle = [s for s, seen in self._seen.items() if now - seen > self.keep_s and not self._jobs.get(s)]
        removed = []
        for session in idle:
            self.end(session)
            removed.append(os.path.join(self.sessions, _safe(session)))
        with self._lock:
            live = {_safe(s) for s in self._seen}
            used = list(self._uploads)
        for parent in (self.sessions, self.root):
            for name in _listdir(parent):
                path = os.path.join(parent, name)
                if path == self.sessions or (parent == self.sessions and name in live) \
                        or any(_inside(u, path) for u in used):
                    continue
                if now - _newest(path) > self.keep_s:
                    shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else _remove(path)
                    removed.append(path)
        return removed


def _inside(path: str, folder: str) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(folder) + os.sep)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def _safe(session: str) -> str:
    """A session id as a folder name (Gradio's ids are short alphanumerics; anything else is kept out)."""
    name = "".join(c for c in (session or "anonymous") if c.isalnum() or c in "-_")[:64]
    return name or "anonymous"


def _listdir(path: str) -> List[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _newest(path: str) -> float:
    newest = os.path.getmtime(path) if os.path.exists(path) else 0.0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                newest = max(newest, os.path.getmtime(os.path.join(folder, name)))
    return newest


def one_line(exc: BaseException, uploads: Sequence[Optional[str]] = ()) -> str:
    """The message the page shows for `exc`: the scripts' one line, with uploaded files named
    by their own names instead of their place in the temporary folder; never a traceback."""
    if isinstance(exc, LipSyncError):
        message = str(exc)
    else:
        message = f"internal error ({type(exc).__name__}: {exc}); the server's log has the details"
    for path in uploads:
        if path:
            message = message.replace(path, os.path.basename(path))
    return message.splitlines()[0] if message else type(exc).__name__


def stage_reporter(report: Callable[[float, str], None]) -> Callable[[str, int, Optional[int]], None]:
    """A pipeline progress callback that tells `report(fraction, text)` of each stage's own
    progress ("rendering: 40 / 75 frames")."""

    def callback(stage: str, done: int, total: Optional[int]) -> None:
        name = STAGES.get(stage, stage)
        if total:
            report(min(1.0, done / total), f"{name}: {done} / {total}")
        else:
            report(0.0, name)

    return callback


def face_crops(original: np.ndarray, frame: np.ndarray, face: np.ndarray, height: int = 320) -> np.ndarray:
    """The lower face of `original` and `frame` side by side (RGB), scaled to `height`: the
    preview a person can judge (the whole frame hides a mouth's change)."""
    import cv2

    x0, y0 = np.nanmin(face, 0)
    x1, y1 = np.nanmax(face, 0)
    w = x1 - x0
    top = int(max(0, y0 + 0.35 * (y1 - y0)))
    bottom = int(min(original.shape[0], y1 + 0.15 * w))
    left, right = int(max(0, x0 - 0.1 * w)), int(min(original.shape[1], x1 + 0.1 * w))
    if bottom - top < 8 or right - left < 8:  # a face at the frame's edge: show the whole frames
        top, bottom, left, right = 0, original.shape[0], 0, original.shape[1]
    scale = height / (bottom - top)
    size = (max(1, int(round((right - left) * scale))), height)
    pair = [cv2.resize(im[top:bottom, left:right], size, interpolation=cv2.INTER_CUBIC) for im in (original, frame)]
    gap = np.full((height, 6, 3), 255, np.uint8)
    return np.ascontiguousarray(np.hstack([pair[0], gap, pair[1]])[:, :, ::-1])


def figures_table(figures: dict) -> str:
    """Markdown table of the evaluation figures the page shows."""
    rows = ["| figure | value |", "|---|---|"]
    for key, label in FIGURES.items():
        if key in figures:
            value = figures[key]
            text = "-" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)
            rows.append(f"| {label} | {text} |")
    return "\n".join(rows)


def _pads(*values) -> Tuple[int, int, int, int]:
    try:
        return tuple(int(v or 0) for v in values)
    except (TypeError, ValueError):
        raise InputError(f"pads {values}: give whole numbers of pixels") from None


def _face_index(value) -> Optional[int]:
    if value is None or value == "":
        return None
    if float(value) != int(value):
        raise InputError(f"face index {value}: give a whole number")
    return int(value)


class App:
    """What the page and the API do, without Gradio: each method takes file paths and options,
    writes into the session's folder and raises LipSyncError with the line to show. `held`:
    the page already counted the job when it was queued (Sessions.hold)."""

    def __init__(self, sessions: Sessions):
        self.sessions = sessions
        self._live: Dict[str, dict] = {}  # session -> its avatar, stream and microphone rate
        self._live_lock = threading.Lock()
        sessions.on_end.append(self.live_end)  # an avatar holds up to LIVE_LOOP_SECONDS of frames: freed with its page

    @staticmethod
    def _inputs(video: Optional[str], audio: Optional[str], text: Optional[str]
                ) -> Tuple[str, Optional[str], Optional[str]]:
        if not video:
            raise InputError("no video or photo given: upload or record one")
        text = text if text and text.strip() else None
        if text is None and not audio:
            raise InputError("no sound given: upload or record a sound, or type a text to speak")
        return video, (None if text is not None else audio), text

    def preview(self, session: str, video: Optional[str], audio: Optional[str], text: Optional[str], *,
                voice: Optional[str] = None, rate: Optional[int] = None, model: str = "sync",
                face_index=None, pads=(0, 0, 0, 0), progress=None, held: bool = False) -> Tuple[np.ndarray, str]:
        """The lower face before and after in one frame (RGB), and its caption."""
        from .pipeline import preview

        self.sessions.use(session, [video, audio])
        with self.sessions.job(session, held) as stop:
            video, audio, text = self._inputs(video, audio, text)
            shot = preview(video_path=video, audio_path=audio, text=text, voice=voice, rate=rate, model=model,
                           face_index=_face_index(face_index), pads=_pads(*pads), quiet=True, progress=progress,
                           cancel=stop.is_set)
        where = "" if shot.photo else f"frame {shot.source_frame}, "
        return face_crops(shot.original, shot.frame, shot.face), \
            f"preview: original | lip-synced ({where}the sound at {shot.time:.2f} s)"

    def lip_sync(self, session: str, video: Optional[str], audio: Optional[str], text: Optional[str], *,
                 voice: Optional[str] = None, rate: Optional[int] = None, model: str = "sync",
                 personalize: str = "auto", face_index=None, pads=(0, 0, 0, 0), crf: int = DEFAULT_CRF,
                 progress=None, held: bool = False) -> Tuple[str, str, Optional[str]]:
        """(result video, summary line, the sound it speaks) in the session's folder."""
        from .pipeline import lip_sync

        self.sessions.use(session, [video, audio])
        with self.sessions.job(session, held) as stop:
            video, audio, text = self._inputs(video, audio, text)
            outfile = self.sessions.result_name(session, os.path.splitext(os.path.basename(video))[0])
            result = lip_sync(video_path=video, audio_path=audio, text=text, outfile=outfile, voice=voice,
                              rate=rate, model=model or "sync", personalize=personalize or "auto",
                              face_index=_face_index(face_index), pads=_pads(*pads), crf=int(crf), quiet=True,
                              progress=progress, cancel=stop.is_set)
        return result.outfile, result.summary().replace(outfile, os.path.basename(outfile)), audio

    def measure(self, session: str, result: str, audio: Optional[str], reference: Optional[str] = None,
                held: bool = False) -> Tuple[dict, str]:
        """evaluate's figures of `result` (against `reference` when given) and its plot."""
        from .eval.evaluation import evaluate

        self.sessions.use(session, [reference])
        with self.sessions.job(session, held):
            plot = os.path.splitext(result)[0] + "_plot.png"
            figures = evaluate(video=result, reference=reference or None, audio=audio, plot=plot, quiet=True)
        return figures, plot

    def stop(self, session: str) -> None:
        self.sessions.stop(session)

    # --- live: an avatar speaking what the microphone hears ---

    def live_prepare(self, session: str, avatar: Optional[str], progress=None) -> Tuple[np.ndarray, str]:
        """Prepares the avatar of a video or photo for the session's live stream; its first frame (RGB)."""
        from .live import Avatar

        if not avatar:
            raise InputError("no video or photo given: upload one for the avatar")
        self.sessions.use(session, [avatar])
        with self.sessions.job(session) as stop:
            prepared = Avatar.prepare(avatar, loop_seconds=LIVE_LOOP_SECONDS, quiet=True, progress=progress,
                                      cancel=stop.is_set)
        with self._live_lock:
            self._live[session] = {"avatar": prepared, "stream": None, "rate": None}
        return prepared.frames[0][:, :, ::-1], f"avatar ready: {prepared.width}x{prepared.height}, " \
            f"{len(prepared.frames)} frames looped; record with the microphone"

    def live_chunk(self, session: str, rate: int, sound: np.ndarray) -> Tuple[Optional[np.ndarray], str]:
        """Feeds a chunk of the microphone (any rate, int16 or float, mono or not) to the session's
        stream; the newest frame (RGB, or None when none became ready) and a status line."""
        from .live import LIVE_LOOKAHEAD

        self.sessions.use(session, [])  # a page streaming is active: not expired
        with self._live_lock:
            live = self._live.get(session)
        if live is None:
            raise InputError("no avatar yet: upload a video or photo and press Prepare first")
        if live["stream"] is None or live["rate"] != rate:
            live["stream"], live["rate"] = live["avatar"].session(LIVE_LOOKAHEAD), rate
        stream = live["stream"]
        frames = stream.feed(to_16k_mono(sound, rate), newest=1)
        status = f"live: {stream.frames_out} frames ({stream.frames_out / live['avatar'].fps:.1f} s)"
        return (frames[-1].image[:, :, ::-1] if frames else None), status

    def live_stop(self, session: str) -> str:
        """The microphone stopped: the stream ends (a new recording starts a new one)."""
        with self._live_lock:
            live = self._live.get(session)
        if live is None or live["stream"] is None:
            return ""
        frames, live["stream"] = live["stream"].frames_out, None
        return f"live: stopped after {frames} frames"

    def live_end(self, session: str) -> None:
        with self._live_lock:
            self._live.pop(session, None)


def to_16k_mono(sound: np.ndarray, rate: int) -> np.ndarray:
    """float32 mono at 16 kHz of a chunk of int16 or float samples, (n,) or (n, channels)."""
    from scipy.signal import resample_poly

    from .io.audio import SAMPLE_RATE

    x = np.asarray(sound)
    x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = np.gcd(int(rate), SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    return x


def _voices() -> List[Tuple[str, str]]:
    """(label, value) of the voice choices: the text's own language first, then tts's list."""
    choices = [("from the text's script (English for Latin)", "")]
    try:
        from .io.tts import list_voices

        choices += [(f"{v.name} ({', '.join(v.languages)})", v.id) for v in list_voices()]
    except LipSyncError as exc:  # no eSpeak: typed text cannot be spoken, the rest works
        log.warning("no voices: %s", exc)
    return choices


def build(sessions: Sessions):
    """The Gradio Blocks of the page and the API."""
    import gradio as gr

    app = App(sessions)
    models = [(f"{name}: {generators.DESCRIPTIONS.get(name, '')}", name) for name in generators.names()]

    def guarded(fn, uploads_of: Callable[..., Sequence[Optional[str]]]):
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
        return stage_reporter(lambda fraction, text: progress(fraction, desc=text))

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

    def api_lip_sync(video, audio=None, text=None, model="sync", personalize="auto", request: gr.Request = None,
                     progress=gr.Progress()):
        outfile, summary, _ = app.lip_sync(request.session_hash, video, audio, text, model=model or "sync",
                                           personalize=personalize or "auto", progress=progress_of(progress))
        return outfile, summary

    def on_stop(request: gr.Request):
        app.stop(request.session_hash)
        return "stopped: no output written"

    def on_unload(request: gr.Request):
        sessions.end(request.session_hash)

    def on_live_prepare(avatar, request: gr.Request, progress=gr.Progress()):
        return app.live_prepare(request.session_hash, avatar, progress=progress_of(progress))

    def on_live_chunk(chunk, request: gr.Request):
        if chunk is None:
            return gr.skip(), gr.skip()
        image, status = app.live_chunk(request.session_hash, *chunk)
        return (gr.skip() if image is None else image), status

    def on_live_stop(request: gr.Request):
        return app.live_stop(request.session_hash)

    uploads_page = lambda *a: a[1:3] + a[4:5]  # noqa: E731: the video, photo and sound of a page event
    with gr.Blocks(title="lipsync", analytics_enabled=False) as demo:
        gr.Markdown("# lipsync\nMake the face in a video or photo speak a new sound, or a text. "
                    "Everything runs on this computer; nothing is sent anywhere.")
        media_tab, sound_tab = gr.State("video"), gr.State("sound")
        with gr.Tabs():
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
                            personalize = gr.Radio(list(PERSONALIZE_MODES), value="auto",
                                                   label="personalize on the video's own speech")
                            face_index = gr.Number(None, precision=0, minimum=0,
                                                   label="face index (empty: the largest face; 0: the leftmost)")
                            with gr.Row():
                                pads = [gr.Number(0, precision=0, label=f"pad {side}")
                                        for side in ("top", "bottom", "left", "right")]
                            crf = gr.Slider(0, 51, value=DEFAULT_CRF, step=1,
                                            label="quality (crf: lower is better, larger)")
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
        run_state = gr.State(None)
        with gr.Row(visible=False):  # the API's own inputs: /lip_sync(video, audio, text, model, personalize)
            api_video, api_audio = gr.File(label="video"), gr.File(label="audio")
            api_text, api_model = gr.Textbox(label="text"), gr.Textbox(generators.names()[0], label="model")
            api_personalize = gr.Textbox("auto", label="personalize")
            api_result, api_summary = gr.Video(label="result"), gr.Textbox(label="summary")
            api_button = gr.Button()

        for tab, state, name in ((video_tab, media_tab, "video"), (photo_tab, media_tab, "photo"),
                                 (audio_tab, sound_tab, "sound"), (text_tab, sound_tab, "text")):
            tab.select(lambda name=name: name, None, state, queue=False, api_visibility="private")
        picks = [media_tab, video, photo, sound_tab, audio, text]
        page_inputs = picks + [voice, rate, model]
        preview_event = preview_button.click(
            on_preview_queued, picks, preview_image, queue=False, api_visibility="private").then(
            guarded(on_preview, uploads_page), page_inputs + [face_index] + pads, preview_image,
            concurrency_id="work", api_visibility="private")
        run = run_button.click(
            on_run_queued, picks, [result, summary, figures, plot, run_state], queue=False,
            api_visibility="private").then(
            guarded(on_run, uploads_page), page_inputs + [personalize, face_index] + pads + [crf],
            [result, summary, run_state], concurrency_id="work", api_visibility="private")
        measure = run.success(guarded(on_measure, lambda *a: a[1:2]), [run_state, reference, measure_it],
                              [figures, plot], concurrency_id="work", api_visibility="private")
        stop_button.click(on_stop, None, summary, queue=False, cancels=[preview_event, run, measure],
                          api_visibility="private")
        api_button.click(guarded(api_lip_sync, lambda *a: a[:2]),
                         [api_video, api_audio, api_text, api_model, api_personalize], [api_result, api_summary],
                         api_name="lip_sync", concurrency_id="work",
                         api_description="Make the face in `video` (a video or photo file) speak `audio` (a sound "
                                         "file) or `text`; returns the result video and a summary line.")
        live_prepare.click(guarded(on_live_prepare, lambda *a: a[:1]), [live_avatar], [live_out, live_status],
                           concurrency_id="work", api_visibility="private")
        live_mic.stream(guarded(on_live_chunk, lambda *a: ()), [live_mic], [live_out, live_status],
                        stream_every=LIVE_CHUNK_S, time_limit=None, concurrency_id="live", api_visibility="private")
        live_mic.stop_recording(on_live_stop, None, live_status, queue=False, api_visibility="private")
        demo.unload(on_unload)
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    return demo


def parser() -> argparse.ArgumentParser:
    from .cli import Parser

    p = Parser(prog="app.py", description="Serve the lip-sync web page and HTTP API on this computer (offline).")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}: this computer only; 0.0.0.0 opens the page "
                        "to your network)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--share", action="store_true", help="refused: a public link would send your media off this computer")
    p.add_argument("--max_upload_mb", type=int, default=MAX_UPLOAD_MB, help="largest file a page may upload, in MB")
    p.add_argument("--keep_minutes", type=float, default=KEEP_MINUTES,
                   help="a session's uploads and results are removed when its page closes, or after this long")
    p.add_argument("--quiet", action="store_true", help="print only the address and errors")
    return p


def check_args(args: argparse.Namespace) -> None:
    if args.share:
        raise InputError("--share is refused: a public link would send your media through a server off this "
                         "computer; use --host 0.0.0.0 to reach the page from your own network")
    if not 1 <= args.port <= 65535:
        raise InputError(f"port {args.port}: must be from 1 to 65535")
    if args.max_upload_mb < 1:
        raise InputError(f"upload limit {args.max_upload_mb} MB: must be 1 or more")
    if not args.keep_minutes > 0:
        raise InputError(f"keep {args.keep_minutes:g} minutes: must be more than 0")


def check_address(host: str, port: int) -> None:
    """InputError unless this computer can listen on host:port (before Gradio tries and says less)."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"--host {host}: not a known address ({getattr(exc, 'strerror', None) or exc})") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            why = {errno.EADDRINUSE: f"port {port} is taken (another app?); choose another with --port",
                   errno.EADDRNOTAVAIL: f"{host} is not an address of this computer",
                   errno.EACCES: f"port {port} needs more rights; use a port above 1023"}
            raise InputError(f"cannot listen on {host}:{port}: "
                             f"{why.get(exc.errno, exc.strerror or exc)}") from None


def offline_environment(upload_dir: str) -> None:
    """Before Gradio is imported: no analytics, no hub look-ups, uploads into `upload_dir`."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["GRADIO_TEMP_DIR"] = upload_dir
    os.environ["LIPSYNC_CACHE_DIR"] = os.path.join(upload_dir, "cache")  # face tracks of uploads go with them
    os.environ.setdefault("GRADIO_SSR_MODE", "False")


def serve(args: argparse.Namespace) -> int:
    from .io.files import temp_dir

    check_args(args)
    check_address(args.host, args.port)
    with temp_dir("ui") as root:
        offline_environment(root)
        if importlib.util.find_spec("gradio") is None:
            raise LipSyncError("the web page needs Gradio: pip install -r requirements-ui.txt "
                               "(or bash run.sh ui)")
        sessions = Sessions(root, args.keep_minutes * 60)
        demo = build(sessions)
        stop = threading.Event()

        def expire():
            while not stop.wait(min(60.0, sessions.keep_s / 4)):
                sessions.expire()

        threading.Thread(target=expire, daemon=True).start()
        try:
            demo.launch(server_name=args.host, server_port=args.port, share=False, prevent_thread_lock=True,
                        max_file_size=f"{args.max_upload_mb}mb", show_error=True, quiet=True,
                        enable_monitoring=False, ssr_mode=False, mcp_server=False, pwa=False)
        except OSError as exc:  # taken between the check and now
            raise LipSyncError(f"cannot listen on {args.host}:{args.port}: {str(exc).splitlines()[0]}") from None
        print(f"lipsync web page: http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{args.port} "
              "(Ctrl-C stops it)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: the way to stop a server
            if not args.quiet:
                print("stopped; its temporary files are removed", flush=True)
        finally:
            stop.set()
            sessions.stop_all()  # running jobs end (their outputs removed) before the folder goes
            demo.close()
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    from .cli import _run

    return _run(serve, parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
