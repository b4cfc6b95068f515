"""The one render loop: output frame j shows source frame `source_index(j)` with its mouth
drawn by the renderer from the planned mouth j, in batches, encoded and muxed as it goes.

Frames stream: only a batch is held (fewer frames when they are large). When the sound
outlasts the video, the frames already decoded are spooled, compressed, to a temporary file
so that they can be played back and forth.
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Optional, Tuple

import cv2
import numpy as np

from ..errors import InputError
from ..generators.base import MouthPlan, MouthRenderer
from ..io.files import atomic_output, check_space, disk_errors, temp_tag
from ..io.media import Colour, MediaInfo, VideoReader, VideoWriter, read_image
from ..progress import Progress

LOOP_MODES = ("pingpong", "forward")
RENDER_BYTES = 256 << 20  # frames of one render batch, source and rendered together


def source_index(j: int, n_source: int, loop: str = "pingpong") -> int:
    """Which source frame plays as output frame `j` when the output outlasts the source."""
    if n_source <= 1:
        return 0
    if loop == "forward":
        return j % n_source
    period = 2 * n_source - 2
    k = j % period
    return k if k < n_source else period - k


SPOOL_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
SPOOL_RATIO = 0.35  # spooled bytes per raw frame byte, a little above what camera footage gives (0.22-0.27)


def spool_bytes(info: MediaInfo, n_frames: int) -> int:
    """About how many bytes the spool of `n_frames` frames of `info` takes (see FrameSource)."""
    return int(n_frames * info.width * info.height * 3 * SPOOL_RATIO)


class FrameSource:
    """Frames of a probed video or photo by index, in playing order, without holding them all.

    Sequential indices come straight from the decoder. When `spool` is set (the sound outlasts
    the video, which then plays again), every decoded frame is also kept, losslessly
    compressed (PNG, about a quarter of the raw size), in an unnamed temporary file, so that
    earlier indices can be read back. Its space in $TMPDIR is checked before the first frame;
    the file vanishes with the process, even one killed outright.
    """

    def __init__(self, info: MediaInfo, fps: float, spool: bool, n_frames: int = 0):
        self.info = info
        if info.is_image:
            self._still = read_image(info.path, (info.width, info.height))
            self._iter = None
        else:
            self._still = None
            self._iter = iter(VideoReader(info, fps))
        self._decoded = 0
        self._last: Optional[np.ndarray] = None
        self._spool, self._offsets = None, [0]
        if spool and self._still is None:
            folder = tempfile.gettempdir()
            check_space(folder, spool_bytes(info, n_frames), "the frames kept while the video plays again",
                        hint=" (the sound is longer than the video); set TMPDIR to a folder on a larger disk")
            with disk_errors(folder, "the frames kept while the video plays again"):
                self._spool = tempfile.TemporaryFile(prefix=temp_tag() + "frames-")

    def get(self, index: int) -> Optional[np.ndarray]:
        if self._still is not None:
            return self._still
        while self._decoded <= index:
            frame = next(self._iter, None)
            if frame is None:
                return self._read_back(index) if index < self._decoded else self._last
            if self._spool is not None:
                self._keep(frame)
            self._last = frame
            self._decoded += 1
        if index == self._decoded - 1:
            return self._last
        return self._read_back(index)

    def _keep(self, frame: np.ndarray) -> None:
        ok, data = cv2.imencode(".png", frame, SPOOL_PNG)
        with disk_errors(tempfile.gettempdir(), "the frames kept while the video plays again "
                                                "(set TMPDIR to a folder on a larger disk)"):
            self._spool.write(data.data)
        self._offsets.append(self._offsets[-1] + len(data))

    def _read_back(self, index: int) -> np.ndarray:
        if self._spool is None:
            raise RuntimeError("frame requested out of order without a spool")
        start, end = self._offsets[index], self._offsets[index + 1]
        self._spool.seek(start)
        data = np.frombuffer(self._spool.read(end - start), np.uint8)
        self._spool.seek(0, os.SEEK_END)
        return cv2.imdecode(data, cv2.IMREAD_COLOR)

    def close(self) -> None:
        if self._iter is not None:
            self._iter.close()
        if self._spool is not None:
            self._spool.close()

    def __enter__(self) -> Callable[[int], Optional[np.ndarray]]:
        return self.get

    def __exit__(self, *exc) -> None:
        self.close()


def render_video(outfile: str, *, frames: Callable[[int], Optional[np.ndarray]], faces: np.ndarray,
                 mouths: MouthPlan, renderer: MouthRenderer, size: Tuple[int, int], fps: float, sound: str,
                 loop: str, crf: int, batch_size: int, source_name: str, progress: Progress = Progress(),
                 colour: Optional[Colour] = None) -> int:
    """Renders and encodes `len(mouths)` frames to `outfile` (atomically), muxed with `sound`.

    `frames(i)` gives source frame i and `faces[i]` its landmarks (68, 2) (NaN: no face, the
    frame is copied unchanged). `colour`: the source's colour description, kept in the output.
    Returns the number of output frames without a face. Large frames go in smaller batches,
    so that a batch holds at most RENDER_BYTES of frames (in and out).
    """
    n_source, n_out = len(faces), len(mouths)
    batch_size = max(1, min(batch_size, RENDER_BYTES // (2 * size[0] * size[1] * 3)))
    without_face = 0
    with atomic_output(outfile) as tmp, \
            VideoWriter(tmp, size[0], size[1], fps, audio_path=sound, crf=crf, colour=colour, name=outfile) as writer, \
            progress.stage("lip-syncing", n_out) as bar:
        for first in range(0, n_out, batch_size):
            js = list(range(first, min(n_out, first + batch_size)))
            idx = [source_index(j, n_source, loop) for j in js]
            batch = [frames(i) for i in idx]
            if any(frame is None for frame in batch):
                raise InputError(f"{source_name}: the video ended early while decoding")
            points = [faces[min(i, n_source - 1)] for i in idx]
            with_face = [k for k, p in enumerate(points) if not np.isnan(p[0, 0])]
            without_face += len(js) - len(with_face)
            if with_face:
                rendered = renderer.render([batch[k] for k in with_face], [points[k] for k in with_face],
                                           mouths[[js[k] for k in with_face]])
                for k, new in zip(with_face, rendered):
                    batch[k] = new
            for frame in batch:
                writer.write(frame)
            bar.update(len(batch))
    return without_face
