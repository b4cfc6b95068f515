"""Video and image input, video output: ffmpeg (from imageio-ffmpeg) behind small classes.

Frames are numpy ``uint8`` arrays of shape ``(H, W, 3)`` in BGR order (OpenCV's), and
they move in small batches: nothing here holds a whole video in memory.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fractions
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from typing import Callable, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from ..errors import STOP_SIGNALS, InputError, OutputError
from .files import register_writer, stop_process, unregister_writer

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEFAULT_CRF = 18
# Larger frames are scaled down to this many pixels on their long side: 4096 (DCI 4K) keeps every
# frame within H.264's levels and players, and a run's memory bounded (see the README).
MAX_SIDE = 4096
VIDEO_OUTPUTS = (".mp4", ".mov", ".m4v", ".mkv")  # containers the writer makes (H.264 + AAC)
PREFETCH_FRAMES = 8  # frames decoded ahead, and frames queued for the encoder...
PREFETCH_BYTES = 64 << 20  # ...as long as they take no more than this (large frames: fewer, at least 2)


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: the one imageio-ffmpeg ships, else one on PATH."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # pragma: no cover - only without imageio-ffmpeg
        exe = shutil.which("ffmpeg")
        if exe is None:
            raise InputError("ffmpeg not found: install imageio-ffmpeg (pip install imageio-ffmpeg)")
        return exe


def last_error(err, default: str, path: Optional[str] = None) -> str:
    """The last line of ffmpeg's error output `err` (bytes or str), without `path` when given
    (the message names the file already), or `default` when it wrote nothing."""
    text = (err.decode("utf-8", "replace") if isinstance(err, bytes) else err or "").strip()
    if not text:
        return default
    line = text.splitlines()[-1]
    return line.replace(path, "").strip(": ") if path else line


def ffmpeg_command(*args: str, loglevel: Optional[str] = "error") -> List[str]:
    """The argument list of an ffmpeg run: the binary, no banner, no stdin, `loglevel`
    (None keeps ffmpeg's default, which prints the streams of its inputs), then `args`."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin"]
    if loglevel:
        cmd += ["-loglevel", loglevel]
    return cmd + list(args)


def frames_in_flight(frame_bytes: int) -> int:
    """How many frames of `frame_bytes` a decoder reads ahead, or an encoder queues."""
    return int(np.clip(PREFETCH_BYTES // max(1, frame_bytes), 2, PREFETCH_FRAMES))


def check_readable(path: str, what: str = "input") -> None:
    """Raise InputError unless `path` is an existing, non-empty, readable file."""
    if not os.path.exists(path):
        raise InputError(f"{path}: {what} file not found")
    if os.path.isdir(path):
        raise InputError(f"{path}: {what} is a folder, not a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: {what} file is not readable (permission denied)")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: {what} file is empty (0 bytes)")


# Exact rounding and full chroma: the YUV -> BGR -> YUV round trip costs about 0.1 dB (the default costs 9 dB).
# Decoding interpolates chroma bilinearly: the default bicubic doubles ffmpeg's decode time for 0.1 dB.
DECODE_SWS_FLAGS = "bilinear+accurate_rnd+full_chroma_int"
ENCODE_SWS_FLAGS = "accurate_rnd+full_chroma_int"
# colour matrix names as ffmpeg prints them -> as its scale filter takes them
_SCALE_MATRIX = {"bt709": "bt709", "smpte170m": "smpte170m", "bt470bg": "bt470", "bt2020nc": "bt2020",
                 "bt2020c": "bt2020", "fcc": "fcc", "smpte240m": "smpte240m"}


@dataclasses.dataclass(frozen=True)
class Colour:
    """A video's colour description as its stream declares it (None: not declared).

    matrix: YUV <-> RGB coefficients (e.g. "bt709"); primaries, transfer: its colour
    primaries and transfer curve; range: "tv" (16-235) or "pc" (0-255).
    """

    matrix: Optional[str] = None
    primaries: Optional[str] = None
    transfer: Optional[str] = None
    range: Optional[str] = None

    def decode_filter(self) -> str:
        """The scale filter that turns this video's YUV into BGR with its own matrix and range."""
        return _scale_filter("in", self, DECODE_SWS_FLAGS) + ",format=bgr24"

    def encode_filter(self, pix_fmt: str = "yuv420p") -> str:
        """The filters that turn BGR back into YUV with this matrix and range, and mark the frames
        with these primaries and transfer (frame properties win over the encoder's tag options)."""
        marks = [f"{key}={value}" for key, value in (("color_primaries", self.primaries), ("color_trc", self.transfer))
                 if value in _KNOWN_TAGS]
        return (_scale_filter("out", self, ENCODE_SWS_FLAGS) + f",format={pix_fmt}"
                + (",setparams=" + ":".join(marks) if marks else ""))

    def tags(self) -> List[str]:
        """Encoder options that write this colour description into the output."""
        pairs = (("-colorspace", self.matrix), ("-color_primaries", self.primaries), ("-color_trc", self.transfer),
                 ("-color_range", self.range))
        known = {"-colorspace": _SCALE_MATRIX, "-color_primaries": _KNOWN_TAGS, "-color_trc": _KNOWN_TAGS,
                 "-color_range": ("tv", "pc")}
        return [item for flag, value in pairs if value in known[flag] for item in (flag, value)]


def _scale_filter(side: str, colour: Colour, flags: str) -> str:
    options = []
    if colour.matrix in _SCALE_MATRIX:
        options.append(f"{side}_color_matrix={_SCALE_MATRIX[colour.matrix]}")
    if colour.range in ("tv", "pc"):
        options.append(f"{side}_range={colour.range}")
    return "scale=" + ":".join(options + [f"flags={flags}"])


_KNOWN_TAGS = {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020", "smpte428", "smpte431",
               "smpte432", "gamma22", "gamma28", "linear", "iec61966-2-1", "iec61966-2-4", "bt1361e", "bt2020-10",
               "bt2020-12", "smpte2084", "arib-std-b67"}
_COLOUR = re.compile(r"\b(yuvj?\w*?)\(([^)]*)\)")
_UNDECLARED = ("unknown", "reserved", "unspecified")


def parse_colour(video_line: str) -> Colour:
    """The colour description in ffmpeg's stream line, e.g. "yuv420p(tv, bt709, progressive)" or
    "yuv420p(tv, smpte170m/smpte170m/bt709)"; a "yuvj" pixel format means full range."""
    m = _COLOUR.search(video_line)
    if not m:
        return Colour(range="pc" if re.search(r"\byuvj", video_line) else None)
    parts = [p.strip() for p in m.group(2).split(",")]
    rng = next((p for p in parts if p in ("tv", "pc")), "pc" if m.group(1).startswith("yuvj") else None)
    desc = next((p for p in parts if p not in ("tv", "pc") and re.fullmatch(r"[\w-]+(/[\w-]+/[\w-]+)?", p)
                 and p not in ("progressive", "tt", "bb", "tb", "bt")), None)
    if desc is None:
        return Colour(range=rng)
    names = desc.split("/") if "/" in desc else [desc] * 3
    matrix, primaries, transfer = [None if n in _UNDECLARED else n for n in names]
    return Colour(matrix, primaries, transfer, rng)


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg says about a file. `width`/`height` are as displayed (rotation applied)."""

    path: str
    duration: float  # seconds; 0.0 when unknown
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    rotation: int = 0  # degrees of display rotation found in the metadata
    is_image: bool = False
    colour: Colour = Colour()  # as the video stream declares it
    stored_size: Optional[Tuple[int, int]] = None  # (width, height) in the file, when frames are scaled to fit

    def fitted(self, max_side: int = MAX_SIDE) -> "MediaInfo":
        """This input as the toolkit reads it: frames larger than `max_side` on a side scaled
        down to fit (every reader of the returned info scales them)."""
        size = fit_size(self.width, self.height, max_side)
        if size == (self.width, self.height):
            return self
        return dataclasses.replace(self, width=size[0], height=size[1], stored_size=(self.width, self.height))


def fit_size(width: int, height: int, max_side: int = MAX_SIDE) -> Tuple[int, int]:
    """(width, height) scaled down, keeping the shape, to at most `max_side` on a side (even sides)."""
    scale = max_side / max(width, height)
    if scale >= 1:
        return width, height
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\d+:\d+.*?: Video: (.*)")
_SIZE = re.compile(r"[ ,](\d{2,5})x(\d{2,5})[ ,\[]")
_FPS = re.compile(r"([\d.]+)(k?) fps")
_TBR = re.compile(r"([\d.]+)(k?) tbr")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees|rotate\s*:\s*(-?\d+)")


def _rate(text: str, pattern: re.Pattern) -> float:
    m = pattern.search(text)
    if not m:
        return 0.0
    return float(m.group(1)) * (1000.0 if m.group(2) else 1.0)


def probe(path: str) -> MediaInfo:
    """Describe a video, audio or image file.

    Raises InputError for a missing file or one ffmpeg cannot read.
    """
    check_readable(path)
    if path.lower().endswith(IMAGE_EXTENSIONS):
        image = read_image(path)
        h, w = image.shape[:2]
        return MediaInfo(path, 0.0, True, False, w, h, 0.0, 0, True)
    proc = subprocess.run(ffmpeg_command("-i", path, loglevel=None),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    text = proc.stderr.decode("utf-8", "replace")
    if "Stream #" not in text:
        raise InputError(f"{path}: not a readable video or audio file ({last_error(text, 'unknown format', path)})")
    m = _DURATION.search(text)
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else 0.0
    has_audio = bool(re.search(r"Stream #\d+:\d+.*?: Audio: ", text))
    video_line = None
    for line in text.splitlines():
        vm = _VIDEO.search(line)
        if vm and "attached pic" not in line:
            video_line = vm.group(1)
            break
    if video_line is None:
        return MediaInfo(path, duration, False, has_audio)
    sm = _SIZE.search(" " + video_line + " ")
    width, height = (int(sm.group(1)), int(sm.group(2))) if sm else (0, 0)
    fps = _rate(video_line, _FPS) or _rate(video_line, _TBR)
    rm = _ROTATION.search(text)
    rotation = int(round(float(rm.group(1) or rm.group(2)))) if rm else 0
    if rotation % 180 != 0:
        width, height = height, width
    if width <= 0 or height <= 0:
        raise InputError(f"{path}: cannot tell the video's frame size")
    still = fps == 0.0 and duration <= 0.05
    return MediaInfo(path, duration, True, has_audio, width, height, fps, rotation, still, parse_colour(video_line))


def read_image(path: str, size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Load a still image as a BGR uint8 array (EXIF orientation applied), resized to `size`
    (width, height) when it is given and differs."""
    check_readable(path, "image")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: not a readable image")
    if size is not None and image.shape[1::-1] != tuple(size):
        image = cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA)
    return image


def fps_fraction(fps: float) -> fractions.Fraction:
    """The exact rate behind a printed one (29.97 -> 30000/1001)."""
    for exact in (fractions.Fraction(24000, 1001), fractions.Fraction(30000, 1001), fractions.Fraction(60000, 1001)):
        if abs(float(exact) - fps) < 0.006:
            return exact
    return fractions.Fraction(fps).limit_denominator(1000)


class VideoReader:
    """Decodes a video to constant-rate BGR frames, one batch at a time.

    Variable-frame-rate input is resampled to `fps` (default: the stream's average rate);
    ffmpeg applies rotation metadata, so frames come out the way players show them.
    `exact`: convert to BGR with the source's own matrix and range and exact rounding (frames
    that are encoded again); False takes ffmpeg's quicker default conversion, about 2.5x
    cheaper, for frames that are only looked at (face tracking).
    """

    def __init__(self, info: MediaInfo, fps: Optional[float] = None, exact: bool = True):
        if not info.has_video or info.is_image:
            raise InputError(f"{info.path}: has no video stream")
        self.info = info
        self.exact = exact
        self.fps = float(fps or info.fps or 25.0)
        self.frame_bytes = info.width * info.height * 3

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.frames()

    def frames(self) -> Iterator[np.ndarray]:
        rate = fps_fraction(self.fps)
        vf = (f"fps={rate.numerator}/{rate.denominator}"
              + (f",scale={self.info.width}:{self.info.height}:flags=area" if self.info.stored_size else "")
              + (f",{self.info.colour.decode_filter()}" if self.exact else ""))
        cmd = ffmpeg_command("-i", self.info.path, "-map", "0:v:0", "-vf", vf, "-f", "rawvideo", "-pix_fmt", "bgr24", "-")
        with tempfile.TemporaryFile() as errlog:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errlog, bufsize=self.frame_bytes)
            # a thread reads ahead, so decoding overlaps with the caller's work on the frames
            ahead: queue.Queue = queue.Queue(maxsize=frames_in_flight(self.frame_bytes))
            stop = threading.Event()

            def going() -> bool:
                return not stop.is_set()

            def read() -> None:
                try:
                    while not stop.is_set():
                        buf = proc.stdout.read(self.frame_bytes)
                        if len(buf) < self.frame_bytes:
                            break
                        put_while(ahead, buf, going)
                except (OSError, ValueError):  # the pipe was closed under us: the caller stopped early
                    pass
                finally:
                    put_while(ahead, None, going)

            reader = threading.Thread(target=read, name="lipsync-decode", daemon=True)
            reader.start()
            count = 0
            try:
                while True:
                    buf = ahead.get()
                    if buf is None:
                        break
                    count += 1
                    yield np.frombuffer(buf, np.uint8).reshape(self.info.height, self.info.width, 3)
            finally:
                stop.set()
                if proc.poll() is None:
                    proc.kill()
                reader.join()
                proc.stdout.close()
                proc.wait()
            if count == 0:  # a damaged tail after good frames is kept, as players do
                errlog.seek(0)
                detail = last_error(errlog.read(), "no frames decoded")
                raise InputError(f"{self.info.path}: cannot decode the video ({detail})")


def put_while(q: queue.Queue, item, keep_trying: Callable[[], bool]) -> bool:
    """Puts `item` on a bounded queue, waiting while `keep_trying()`; False if it gave up."""
    while keep_trying():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class PipeFeeder:
    """A thread that writes the items (bytes-like) of a bounded queue into a pipe of ffmpeg, so
    that encoding overlaps with the caller's work on the next frames. `put` waits while the
    feeder can take items (False once it cannot: the pipe broke); `end` lets it finish what is
    queued and stops it; `stop` makes it drop what is left. `flush`: flush after every item (a
    live stream); `close_pipe`: close the pipe when it ends."""

    def __init__(self, pipe, maxsize: int, name: str, flush: bool = False, close_pipe: bool = False):
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.broken = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pipe, flush, close_pipe), name=name, daemon=True)
        self._thread.start()

    def _run(self, pipe, flush: bool, close_pipe: bool) -> None:
        try:
            while True:
                item = self.queue.get()
                if item is None or self._stop.is_set():
                    return
                pipe.write(item)
                if flush:
                    pipe.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.broken = True
        finally:
            if close_pipe:
                with contextlib.suppress(OSError, ValueError):
                    pipe.close()

    def feeding(self) -> bool:
        return self._thread.is_alive() and not self.broken

    def put(self, item, keep_trying: Optional[Callable[[], bool]] = None) -> bool:
        """Queues `item`, waiting while the feeder (or `keep_trying()`) says it can take it."""
        return put_while(self.queue, item, keep_trying or self.feeding)

    def finish(self, keep_trying: Optional[Callable[[], bool]] = None) -> None:
        """Lets the feeder write what is queued, then end (see `join`)."""
        # a feeder stopped on a broken pipe takes nothing more
        put_while(self.queue, None, keep_trying or self._thread.is_alive)

    def join(self, timeout: Optional[float] = None) -> None:
        self._thread.join(timeout)

    def end(self) -> None:
        """`finish`, then waits for the feeder."""
        self.finish()
        self.join()

    def stop(self) -> None:
        """Makes the feeder drop what is queued (a failed or aborted write)."""
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(None)  # a feeder waiting on an empty queue ends

    def discard(self, timeout: Optional[float] = None) -> None:
        """Stops the feeder, drops what is queued and waits for it (after its pipe's reader is gone:
        a write blocked on the pipe fails then)."""
        self.stop()
        with contextlib.suppress(queue.Empty):
            while True:
                self.queue.get_nowait()
        self.queue.put(None)
        self._thread.join(timeout)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Holds Ctrl-C (SIGINT), SIGTERM and SIGHUP back for a few statements, then delivers them.

    Used so that a child process is never started without its handle being stored (an
    orphaned encoder would finish writing a file after the cleanup). Python runs signal
    handlers between bytecodes, so a signal that arrived just before is held too.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = []
    previous = {sig: signal.signal(sig, lambda signum, frame: held.append(signum))
                for sig in STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN}  # nohup stays nohup
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            handler = previous[held[0]]
            if callable(handler):
                handler(held[0], None)  # the default SIGINT handler raises KeyboardInterrupt here
            else:
                os.kill(os.getpid(), held[0])


class VideoWriter:
    """Encodes BGR frames with x264 (yuv420p) and muxes a sound track, in one ffmpeg process.

    ``audio_path`` may be any file with a sound stream; it is re-encoded to AAC.
    Frames must all have the shape given at construction. ``colour``: the source's colour
    description, kept in the output (matrix, range and tags), so that pixels the caller did
    not change come back as a plain re-encode would give them. ``name``: the file the user
    asked for, named in errors (``path`` may be its temporary name).
    """

    def __init__(self, path: str, width: int, height: int, fps: float, audio_path: Optional[str] = None,
                 crf: int = DEFAULT_CRF, preset: str = "medium", colour: Optional[Colour] = None,
                 name: Optional[str] = None):
        self.path, self.width, self.height, self.name = path, width, height, name or path
        rate = fps_fraction(fps)
        cmd = ffmpeg_command("-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
                             "-r", f"{rate.numerator}/{rate.denominator}", "-i", "-")
        if audio_path:
            cmd += ["-i", audio_path, "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "192k"]
        colour = colour or Colour()
        cmd += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                "-vf", f"pad=ceil(iw/2)*2:ceil(ih/2)*2,{colour.encode_filter()}", *colour.tags(),
                "-movflags", "+faststart"]
        if path.lower().endswith((".mp4", ".mov", ".m4v")):
            cmd += ["-f", "mp4"]
        cmd.append(path)
        self._errlog = tempfile.TemporaryFile()
        with signals_deferred():
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._errlog)
            register_writer(path, self._proc)
        self.frames_written = 0
        self._feeder = PipeFeeder(self._proc.stdin, frames_in_flight(width * height * 3), "lipsync-encode")

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame of shape {frame.shape} {frame.dtype}, expected {(self.height, self.width, 3)} uint8")
        if self._feeder.broken or not self._feeder.put(np.ascontiguousarray(frame).data):
            self._fail()
        self.frames_written += 1

    def _fail(self):
        self._feeder.stop()
        self._proc.wait()
        self._errlog.seek(0)
        raise OutputError(f"{self.name}: ffmpeg could not encode the video "
                          f"({last_error(self._errlog.read(), 'unknown error')})")

    def close(self) -> None:
        self._feeder.end()
        if self._feeder.broken:
            self._fail()
        if self._proc.stdin and not self._proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        code = self._proc.wait()
        unregister_writer(self.path)
        if code != 0:
            self._fail()
        self._errlog.close()

    def abort(self) -> None:
        self._feeder.stop()
        stop_process(self._proc)  # a write blocked on the pipe fails now
        self._feeder.discard()
        unregister_writer(self.path)
        self._errlog.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
