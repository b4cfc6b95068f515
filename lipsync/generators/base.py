"""What a generator is: a named pair of stages (`lipsync.stages`) built for one input.

A `Generator` (one module in `lipsync.generators`, one line in its registry) checks what it
needs before the long work starts (`check`), then builds its sound stage (`SoundToMouth`) and
its renderer (`MouthRenderer`) for one input from a `Source`: the tracked face and the facts
of the input. `streams` says whether its sound stage can plan a stream as the sound arrives
(live mode and `--lookahead` accept any generator that can).
"""
from __future__ import annotations

import abc
import dataclasses
import functools
from typing import ClassVar, Optional, Tuple

import numpy as np

from .. import cache
from ..face.track import FaceTrack
from ..io.audio import SAMPLE_RATE, load_audio
from ..progress import Progress
from ..stages import MouthRenderer, SoundToMouth
from .options import GeneratorOptions

@dataclasses.dataclass
class Source:
    """What a generator knows of one input when it builds its stages."""

    path: str  # the video or photo
    is_image: bool
    has_audio: bool  # the video has its own sound track
    fps: float  # of the output
    track: FaceTrack  # as tracked
    smooth: FaceTrack  # smoothed over time: the landmarks that are rendered
    _sound: Optional[np.ndarray] = dataclasses.field(default=None, repr=False, compare=False)

    def own_sound(self, seconds: float) -> np.ndarray:
        """The input's own sound, its first `seconds` (float32 mono at 16 kHz): decoded once per
        input, however many times a generator asks."""
        if self._sound is None:
            self._sound = load_audio(self.path)
        return self._sound[:int(seconds * SAMPLE_RATE)]

    @functools.cached_property
    def digest(self) -> str:
        """The input file's content hash (read once per process while the file is unchanged)."""
        return cache.file_digest(self.path)


class Generator(abc.ABC):
    """One named way to lip-sync; registered in `lipsync.generators.GENERATORS`."""

    name: ClassVar[str]  # as registered
    # Its sound stage hands out frames while the sound arrives (`SoundToMouth.stream`), a bounded
    # look-ahead after each: live mode and `--lookahead` take it.
    streams: ClassVar[bool] = False

    def __init__(self, settings: GeneratorOptions = GeneratorOptions()):
        """`settings`: the generator's options, an instance of the class its registry entry names
        (`lipsync.generators.options_class`), already checked."""
        self.settings = settings

    def check(self) -> None:
        """Fails (LipSyncError) when something this generator needs is missing or unusable,
        before any decoding or tracking; loads what it will use. Nothing to check by default."""

    @abc.abstractmethod
    def stages(self, source: Source, progress: Progress) -> Tuple[SoundToMouth, MouthRenderer]:
        """The sound stage and the renderer for one input."""
