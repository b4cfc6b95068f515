"""A generator written the way a new one is added: this module plus one registry line.

`closed` keeps every mouth shut whatever the sound says (a "mute" model): its sound stage
plans the person's rest opening for every frame, and it reuses the mesh renderer.
"""
from typing import Tuple

import numpy as np

from lipsync.generators.base import Generator, Source
from lipsync.generators.warp import place_opening
from lipsync.progress import Progress
from lipsync.render.mesh import MeshRenderer
from lipsync.stages import MouthRenderer, SoundToMouth


class RestOpening(SoundToMouth):
    lookahead_s = 0.0  # needs no sound at all

    def __init__(self, rest: float):
        self.rest = rest

    def plan(self, wav: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
        return np.full(n_frames, self.rest, np.float32)


class ClosedMouthGenerator(Generator):
    name = "closed"
    streams = True  # its sound stage reads no sound ahead: live mode and --lookahead take it

    def stages(self, source: Source, progress: Progress) -> Tuple[SoundToMouth, MouthRenderer]:
        return RestOpening(0.0), MeshRenderer(place_opening, source.track.exemplar, self.settings.pads)
