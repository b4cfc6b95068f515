"""The one render loop: output frame j shows source frame `source_index(j)` with its mouth
drawn by the renderer from the planned mouth j, in batches, encoded and muxed as it goes.

Frames stream: only a batch is held (fewer frames when they are large). The frames come from
`lipsync.io.source` (which spools those that play again when the sound outlasts the video).
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..io.files import atomic_output
from ..io.media import Colour, VideoWriter
from ..io.source import source_index
from ..progress import Progress
from ..stages import MouthPlan, MouthRenderer

RENDER_BYTES = 256 << 20  # frames of one render batch, source and rendered together


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
