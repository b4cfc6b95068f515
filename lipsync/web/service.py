"""What the page and the API do, without Gradio (`App`): each method takes file paths and
options, writes into the session's folder and raises LipSyncError with the line to show; and
the helpers the page shows results with."""
import os
import threading
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError, LipSyncError
from ..io.tts import require_sound
from ..run_options import RunOptions
from .sessions import Sessions

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
        text = text if text and text.strip() else None  # an empty text box: the sound, if any
        require_sound(audio, text, "upload or record a sound, or type a text to speak")
        return video, (None if text is not None else audio), text

    def preview(self, session: str, video: Optional[str], audio: Optional[str], text: Optional[str], *,
                voice: Optional[str] = None, rate: Optional[int] = None, model: str = "sync",
                face_index=None, pads=(0, 0, 0, 0), progress=None, held: bool = False) -> Tuple[np.ndarray, str]:
        """The lower face before and after in one frame (RGB), and its caption."""
        from ..pipeline import preview

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
                 personalize: str = "auto", face_index=None, pads=(0, 0, 0, 0), crf: int = RunOptions.crf,
                 progress=None, held: bool = False) -> Tuple[str, str, Optional[str]]:
        """(result video, summary line, the sound it speaks) in the session's folder."""
        from ..pipeline import lip_sync

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
        from ..eval.evaluation import evaluate

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
        from ..live import Avatar

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
        from ..live import LIVE_LOOKAHEAD

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

    from ..io.audio import SAMPLE_RATE, float_samples

    x = np.asarray(sound)
    x = float_samples(x).reshape(x.shape)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = np.gcd(int(rate), SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    return x
