"""Sound and pictures in real time, for live mode: `SoundInput` reads sound as it arrives (a
pipe, or a file played at real-time speed) on a thread; `StreamWriter` writes frames and their
sound as a stream (MPEG-TS on standard output, or a file) through one ffmpeg process."""
from __future__ import annotations

import os
import queue
import subprocess
import tempfile
import threading
import time
from typing import BinaryIO, Optional

import numpy as np

from ..errors import InputError, LipSyncError, OutputError
from .audio import SAMPLE_RATE, float_samples, load_audio
from .files import register_writer, stop_process, unregister_writer
from .media import DEFAULT_CRF, Colour, PipeFeeder, ffmpeg_command, fps_fraction, last_error, signals_deferred

STREAM_CHUNK_S = 0.02  # a stream's sound reaches the planner in chunks this long (a file played live, --lookahead)


class SoundInput:
    """Sound arriving in real time, read by a thread: `get(timeout)` gives (arrival time,
    float32 chunk), None at the end, or raises queue.Empty when nothing came in time."""

    def __init__(self, target, name: str):
        self.name = name
        self._queue: queue.Queue = queue.Queue()
        self._error: Optional[BaseException] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(target,), name="lipsync-live-sound", daemon=True)
        self._thread.start()

    def _run(self, target) -> None:
        try:
            target(self._put, self._stop)
        except BaseException as exc:  # handed to the reader of the queue
            self._error = exc
        finally:
            self._queue.put(None)

    def _put(self, chunk: np.ndarray) -> None:
        if len(chunk):
            self._queue.put((time.monotonic(), chunk))

    def get(self, timeout: float):
        item = self._queue.get(timeout=max(0.0, timeout))
        if item is None and self._error is not None:
            if isinstance(self._error, (LipSyncError, KeyboardInterrupt)):
                raise self._error
            raise InputError(f"{self.name}: could not be read ({self._error})")
        return item

    def close(self) -> None:
        self._stop.set()

    @classmethod
    def from_pipe(cls, stream: BinaryIO, name: str = "standard input") -> "SoundInput":
        """Raw 16 kHz mono s16le from a pipe (standard input), as it comes."""

        def read(put, stop):
            odd = b""
            while not stop.is_set():
                data = stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096)
                if not data:
                    return
                data, odd = odd + data, b""
                if len(data) % 2:
                    data, odd = data[:-1], data[-1:]
                put(float_samples(np.frombuffer(data, "<i2")))

        return cls(read, name)

    @classmethod
    def from_file(cls, path: str, speed: float = 1.0) -> "SoundInput":
        """The sound of any audio or video file, played at `speed` times real time (0: at once)."""
        wav = load_audio(path)

        def play(put, stop):
            step = int(STREAM_CHUNK_S * SAMPLE_RATE)
            start = time.monotonic()
            for k, first in enumerate(range(0, len(wav), step)):
                if stop.is_set():
                    return
                if speed > 0:
                    wait = start + k * STREAM_CHUNK_S / speed - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                put(np.array(wav[first:first + step]))

        return cls(play, path)


class StreamWriter:
    """Frames and their sound into one ffmpeg process: H.264 (x264 ultrafast, zero latency) and
    AAC, as MPEG-TS for '-' (standard output) or a .ts file, else the container of the file's
    extension. The picture goes in on standard input, the sound (s16le) on a second pipe; a
    thread feeds each, so neither waits on the other. ffmpeg runs in a session of its own: the
    terminal's Ctrl-C reaches this process only, which ends the stream and then closes it."""

    def __init__(self, path: str, width: int, height: int, fps: float, colour: Optional[Colour] = None,
                 crf: int = DEFAULT_CRF, name: Optional[str] = None):
        self.path = path
        self.name = name or ("standard output" if path == "-" else path)
        rate = fps_fraction(fps)
        colour = colour or Colour()
        read_fd, write_fd = os.pipe()
        cmd = ffmpeg_command("-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
                             "-r", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0",
                             "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", f"pipe:{read_fd}",
                             "-map", "0:v:0", "-map", "1:a:0",
                             "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-crf", str(crf),
                             "-g", str(max(1, int(round(2 * fps)))), "-pix_fmt", "yuv420p",
                             "-vf", f"pad=ceil(iw/2)*2:ceil(ih/2)*2,{colour.encode_filter()}", *colour.tags(),
                             "-c:a", "aac", "-b:a", "128k")
        if path == "-" or path.lower().endswith(".ts"):
            cmd += ["-f", "mpegts", "-flush_packets", "1"]
        cmd.append("pipe:1" if path == "-" else path)
        self._errlog = tempfile.TemporaryFile()
        try:
            with signals_deferred():
                self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._errlog, pass_fds=(read_fd,),
                                              stdout=None if path == "-" else subprocess.DEVNULL,
                                              start_new_session=True)
                if path != "-":
                    register_writer(path, self._proc)
        except BaseException:
            os.close(write_fd)
            self._errlog.close()
            raise
        finally:
            os.close(read_fd)
        # a thread feeds each pipe, so that neither waits on the other; each closes its pipe at the end
        self._feeders = {"audio": PipeFeeder(os.fdopen(write_fd, "wb"), 64, "lipsync-live-audio", flush=True,
                                             close_pipe=True),
                         "video": PipeFeeder(self._proc.stdin, 8, "lipsync-live-video", flush=True, close_pipe=True)}

    def _feeding(self) -> bool:
        return all(feeder.feeding() for feeder in self._feeders.values())

    def write(self, image: np.ndarray, sound: np.ndarray) -> None:
        """One frame and the sound it spans (float32 at 16 kHz)."""
        pcm = (np.clip(sound, -1, 1) * 32767).astype("<i2").tobytes()
        if not (self._feeders["audio"].put(pcm, self._feeding)
                and self._feeders["video"].put(np.ascontiguousarray(image).tobytes(), self._feeding)):
            self._fail()

    def _fail(self):
        self.abort()
        self._errlog.seek(0)
        raise OutputError(f"{self.name}: ffmpeg could not write the stream "
                          f"({last_error(self._errlog.read(), 'its output closed')})")

    def close(self) -> None:
        """Ends the stream: the file is complete when this returns."""
        for feeder in self._feeders.values():  # both told first: ffmpeg reads the two pipes side by side
            feeder.finish(self._feeding)
        for feeder in self._feeders.values():
            feeder.join(timeout=60)
        code = self._proc.wait()
        unregister_writer(self.path)
        if code != 0 or any(feeder.broken for feeder in self._feeders.values()):
            self._fail()
        self._errlog.close()

    def abort(self) -> None:
        stop_process(self._proc)
        unregister_writer(self.path)
        for feeder in self._feeders.values():
            feeder.discard(timeout=5)
