"""The `warp` generator: training-free, the sound's loudness opens the person's own mouth.

Sound stage: the log-mel level of the speech band around each video frame, normalised
between the clip's pauses and its loudest syllables (`features.mouth_drive`), mapped onto the
person's own range of inner-lip openings. Renderer: the mesh renderer moves the lips and jaw
to that opening (`geometry.target_points`).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ..io.features import mouth_drive
from ..progress import Progress
from ..render.mesh import MeshRenderer
from ..stages import MouthRenderer, SoundToMouth
from .base import Generator, Source
from .geometry import Calibration, calibrate, target_points


class LoudnessOpening(SoundToMouth):
    """Plans the inner-lip opening (inter-ocular units, float32 (n,)) from loudness alone."""

    def __init__(self, calibration: Calibration):
        self.calibration = calibration

    def plan(self, wav: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
        return self.calibration.opening(mouth_drive(wav, fps, n_frames))


def place_opening(points: np.ndarray, opening) -> np.ndarray:
    """The frame's landmarks (68, 2) with the inner lips opened to `opening`."""
    return target_points(points, float(opening))


class WarpGenerator(Generator):
    name = "warp"

    def stages(self, source: Source, progress: Progress) -> Tuple[SoundToMouth, MouthRenderer]:
        sound = LoudnessOpening(calibrate(source.track.openings))
        return sound, MeshRenderer(place_opening, source.track.exemplar, self.settings.pads)
