"""The input side of a run: which source frame plays as each output frame, and the frames of a
video or photo by index without holding them all.

When the sound outlasts the video, the video plays back and forth (or again from the start);
the frames that play again are spooled, compressed, to a temporary file as they are decoded.
"""
from __future__ import annotations

import collections
import os
import tempfile
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Collection, Deque, Dict, Optional, Set, Tuple

import numpy as np

from .files import check_space, disk_errors, temp_tag
from .media import MediaInfo, VideoReader, frames_in_flight, read_image

LOOP_MODES = ("pingpong", "forward")


def source_index(j: int, n_source: int, loop: str = "pingpong") -> int:
    """Which source frame plays as output frame `j` when the output outlasts the source."""
    if n_source <= 1:
        return 0
    if loop == "forward":
        return j % n_source
    period = 2 * n_source - 2
    k = j % period
    return k if k < n_source else period - k


SPOOL_RATIO = 0.5  # spooled bytes per raw frame byte, above what camera footage gives (0.2-0.45)
SPOOL_WHAT = "the frames kept while the video plays again"


def replayed(n_out: int, n_source: int, loop: str = "pingpong") -> Set[int]:
    """The source frames that play again after their first showing when `n_out` frames are
    made from `n_source` (what a FrameSource must keep): the last n_out - n_source frames, for
    a sound a little longer than the video; every frame, for one several times as long."""
    return {source_index(j, n_source, loop) for j in range(n_source, min(n_out, 3 * n_source))}


class Spool:
    """Frames kept for a replay, losslessly compressed (zlib, a fifth to a half of the raw 3
    bytes per pixel) by a worker thread while the render goes on, in an unnamed file in
    $TMPDIR that vanishes with the process, even one killed outright. Its space is checked
    when it is made; a disk that fills anyway is one OutputError line."""

    def __init__(self, shape: Tuple[int, int, int], n_frames: int):
        folder = tempfile.gettempdir()
        check_space(folder, int(n_frames * np.prod(shape) * SPOOL_RATIO), SPOOL_WHAT,
                    hint=" (the sound is longer than the video); set TMPDIR to a folder on a larger disk")
        with disk_errors(folder, SPOOL_WHAT):
            self._file = tempfile.TemporaryFile(prefix=temp_tag() + "frames-")
        self.shape, self.size = shape, 0
        self._spans: Dict[int, Future] = {}  # frame index -> (offset, length) once written
        self._pending: Deque[Future] = collections.deque()
        self._limit = frames_in_flight(int(np.prod(shape)))
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="lipsync-spool")

    def put(self, index: int, frame: np.ndarray) -> None:
        while self._pending and (self._pending[0].done() or len(self._pending) >= self._limit):
            self._pending.popleft().result()  # the oldest first: waits while too many are queued, raises its error
        self._spans[index] = future = self._worker.submit(self._write, frame)
        self._pending.append(future)

    def _write(self, frame: np.ndarray) -> Tuple[int, int]:
        data = memoryview(zlib.compress(frame.data, 1))
        start, done = self.size, 0
        with disk_errors(tempfile.gettempdir(), f"{SPOOL_WHAT} (set TMPDIR to a folder on a larger disk)"):
            while done < len(data):
                done += os.pwrite(self._file.fileno(), data[done:], start + done)
        self.size += len(data)
        return start, len(data)

    def __contains__(self, index: int) -> bool:
        return index in self._spans

    def get(self, index: int) -> np.ndarray:
        start, length = self._spans[index].result()
        return np.frombuffer(zlib.decompress(os.pread(self._file.fileno(), length, start)), np.uint8).reshape(self.shape)

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
        self._file.close()


class FrameSource:
    """Frames of a probed video or photo by index, in playing order, without holding them all.

    Sequential indices come straight from the decoder. The frames in `keep` (those that play
    again when the sound outlasts the video, see `replayed`) also go to a Spool as they are
    decoded, and are read back from it.
    """

    def __init__(self, info: MediaInfo, fps: float, keep: Collection[int] = ()):
        self.info = info
        if info.is_image:
            self._still = read_image(info.path, (info.width, info.height))
            self._iter = None
        else:
            self._still = None
            self._iter = iter(VideoReader(info, fps))
        self._decoded = 0
        self._last: Optional[np.ndarray] = None
        self._keep = set(keep) if self._still is None else set()
        self.spool = Spool((info.height, info.width, 3), len(self._keep)) if self._keep else None

    def get(self, index: int) -> Optional[np.ndarray]:
        if self._still is not None:
            return self._still
        while self._decoded <= index:
            frame = next(self._iter, None)
            if frame is None:
                return self._read_back(index) if index < self._decoded else self._last
            if self._decoded in self._keep:
                self.spool.put(self._decoded, frame)
            self._last = frame
            self._decoded += 1
        if index == self._decoded - 1:
            return self._last
        return self._read_back(index)

    def _read_back(self, index: int) -> np.ndarray:
        if self.spool is None or index not in self.spool:
            raise RuntimeError(f"frame {index} requested again but not kept")
        return self.spool.get(index)

    def close(self) -> None:
        if self._iter is not None:
            self._iter.close()
        if self.spool is not None:
            self.spool.close()

    def __enter__(self) -> Callable[[int], Optional[np.ndarray]]:
        return self.get

    def __exit__(self, *exc) -> None:
        self.close()
