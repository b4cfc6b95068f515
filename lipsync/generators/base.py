"""The two seams of every generator, and what a generator is.

A generator is a pair of stages, each swappable on its own:

1. `SoundToMouth`: the sound decides the mouth of every output frame. Its `plan` turns a
   whole sound into a `MouthPlan` (one value per output frame: an opening, a canonical
   mouth shape, a mel window, whatever its renderer reads); `stream()` takes the sound in
   chunks instead and hands out frames as soon as its declared look-ahead allows.
2. `MouthRenderer`: a frame, its face landmarks and its planned mouth give a new frame.

A `Generator` (one module in `lipsync.generators`, one line in its registry) checks what it
needs before the long work starts (`check`), then builds both stages for one input from a
`Source`: the tracked face and the facts of the input.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from ..face.track import FaceTrack
from ..io.audio import SAMPLE_RATE, float_samples, frame_count
from ..progress import Progress


class MouthPlan(Protocol):
    """Per-output-frame mouth values: `len(plan)` frames, `plan[indices]` the values of a
    list of frame indices as an array whose first axis follows `indices`."""

    def __len__(self) -> int: ...

    def __getitem__(self, indices) -> np.ndarray: ...


class SoundToMouth(abc.ABC):
    """Stage 1: sound (float32 mono, 16 kHz) to the mouth of each output frame."""

    # How much sound after a frame's time the stage reads to plan that frame, in seconds;
    # None: it needs the whole sound first (it normalises over the clip).
    lookahead_s: Optional[float] = None

    @abc.abstractmethod
    def plan(self, wav: np.ndarray, fps: float, n_frames: int) -> MouthPlan:
        """The mouth of frames 0 .. n_frames - 1 at `fps` for the whole sound `wav`."""

    def stream(self, fps: float) -> "SoundStream":
        """A planner fed with chunks of sound (see `SoundStream`)."""
        return SoundStream(self, fps)


class SoundStream:
    """Feeds a `SoundToMouth` with chunks of sound and hands out each frame's mouth once the
    sound it depends on has arrived (frame time + look-ahead), or at `finish()` for a stage
    that needs the whole sound. The frames handed out equal those of `plan` on the sound
    received so far; a stage may replace this generic replanning with a cheaper one.
    """

    def __init__(self, stage: SoundToMouth, fps: float):
        self.stage, self.fps = stage, fps
        self._chunks: List[np.ndarray] = []
        self._samples = 0
        self.frames_out = 0
        self._empty: Optional[np.ndarray] = None  # no frames, in the plan's shape

    def feed(self, chunk: np.ndarray) -> np.ndarray:
        """Adds `chunk` (float32 or int16 mono at 16 kHz); returns the mouths of the frames that
        became final, in order (an empty array of the same shape when none did)."""
        self._chunks.append(float_samples(chunk))
        self._samples += self._chunks[-1].size
        if self.stage.lookahead_s is None:
            return self._take(0)
        ready_s = self._samples / SAMPLE_RATE - self.stage.lookahead_s
        return self._take(max(0, int(np.floor(ready_s * self.fps))))

    def finish(self) -> np.ndarray:
        """The mouths of every frame not handed out yet (the sound has ended)."""
        return self._take(frame_count(self._samples, self.fps) if self._samples else 0)

    def _take(self, upto: int) -> np.ndarray:
        if upto <= self.frames_out:
            if self._empty is None:  # the shape of one frame's mouth, from a tenth of a second of silence
                self._empty = np.asarray(self.stage.plan(np.zeros(SAMPLE_RATE // 10, np.float32), self.fps, 1)[[0]])[:0]
            return self._empty
        wav = np.concatenate(self._chunks)
        self._chunks = [wav]
        n = max(upto, frame_count(len(wav), self.fps))
        plan = self.stage.plan(wav, self.fps, n)
        out = np.asarray(plan[list(range(self.frames_out, upto))])
        self.frames_out = upto
        return out


class MouthRenderer(abc.ABC):
    """Stage 2: the planned mouth drawn into the frames."""

    @abc.abstractmethod
    def render(self, frames: Sequence[np.ndarray], faces: Sequence[np.ndarray], mouths: np.ndarray) -> List[np.ndarray]:
        """New frames (uint8 BGR (H, W, 3)) for `frames`, each with face landmarks (68, 2) in
        `faces` and its planned mouth in `mouths` (the plan's values for those frames)."""


PERSONALIZE_MODES = ("auto", "on", "off")


@dataclasses.dataclass(frozen=True)
class GeneratorSettings:
    """The options a generator may read (each reads only its own)."""

    pads: Tuple[int, int, int, int] = (0, 0, 0, 0)  # extra pixels (top, bottom, left, right) that may change
    checkpoint_path: Optional[str] = None  # weights; None: the generator's default
    device: str = "auto"  # where PyTorch runs (wav2lip)
    personalize: str = "auto"  # sync: "auto", "on" or "off"
    personalize_seconds: float = 120.0  # sync: personalization reads at most this much of the input's own sound
    use_cache: bool = True  # reuse and store per-input results (personal models)


@dataclasses.dataclass
class Source:
    """What a generator knows of one input when it builds its stages."""

    path: str  # the video or photo
    is_image: bool
    has_audio: bool  # the video has its own sound track
    fps: float  # of the output
    track: FaceTrack  # as tracked
    smooth: FaceTrack  # smoothed over time: the landmarks that are rendered


class Generator(abc.ABC):
    """One named way to lip-sync; registered in `lipsync.generators.GENERATORS`."""

    name: ClassVar[str]  # as registered

    def __init__(self, settings: GeneratorSettings = GeneratorSettings()):
        self.settings = settings

    def check(self) -> None:
        """Fails (LipSyncError) when something this generator needs is missing or unusable,
        before any decoding or tracking; loads what it will use. Nothing to check by default."""

    @abc.abstractmethod
    def stages(self, source: Source, progress: Progress) -> Tuple[SoundToMouth, MouthRenderer]:
        """The sound stage and the renderer for one input."""
