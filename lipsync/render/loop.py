"""The one render loop: output frame j shows source frame `source_index(j)` with its mouth
drawn by the renderer from the planned mouth j, in batches, encoded and muxed as it goes.

Frames stream: only a batch is held. When the sound outlasts the video, the frames already
decoded are spooled to a temporary file so that they can be played back and forth.
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..generators.base import MouthPlan, MouthRenderer
from ..io.media import Colour, MediaInfo, VideoReader, VideoWriter, atomic_output, read_image
from ..progress import Progress

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


class FrameSource:
    """Frames of a probed video or photo by index, in playing order, without holding them all.

    Sequential indices come straight from the decoder; when `spool` is set, every decoded
    frame is also appended to a temporary file so that earlier indices can be read back.
    """

    def __init__(self, info: MediaInfo, fps: float, spool: bool):
        self.info = info
        if info.is_image:
            self._still = read_image(info.path)
            self._iter = None
        else:
            self._still = None
            self._iter = iter(VideoReader(info, fps))
        self._decoded = 0
        self._last: Optional[np.ndarray] = None
        self._spool = tempfile.TemporaryFile(prefix="lipsync-frames-") if spool and self._still is None else None
        self._frame_bytes = info.width * info.height * 3

    def get(self, index: int) -> Optional[np.ndarray]:
        if self._still is not None:
            return self._still
        while self._decoded <= index:
            frame = next(self._iter, None)
            if frame is None:
                return self._read_back(index) if index < self._decoded else self._last
            if self._spool is not None:
                self._spool.write(frame.data)
            self._last = frame
            self._decoded += 1
        if index == self._decoded - 1:
            return self._last
        return self._read_back(index)

    def _read_back(self, index: int) -> np.ndarray:
        if self._spool is None:
            raise RuntimeError("frame requested out of order without a spool")
        self._spool.seek(index * self._frame_bytes)
        buf = self._spool.read(self._frame_bytes)
        self._spool.seek(0, os.SEEK_END)
        return np.frombuffer(buf, np.uint8).reshape(self.info.height, self.info.width, 3)

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
    Returns the number of output frames without a face.
    """
    n_source, n_out = len(faces), len(mouths)
    without_face = 0
    with atomic_output(outfile) as tmp, \
            VideoWriter(tmp, size[0], size[1], fps, audio_path=sound, crf=crf, colour=colour) as writer, \
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
