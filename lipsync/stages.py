"""The seams between the stages: what a sound-to-mouth planner and a mouth renderer are.

Every generator is a pair of these, each swappable on its own:

1. `SoundToMouth`: the sound decides the mouth of every output frame. Its `plan` turns a
   whole sound into a `MouthPlan` (one value per output frame: an opening, a canonical
   mouth shape, a mel window, whatever its renderer reads); `stream(fps, lookahead_s)` takes
   the sound in chunks instead and hands out frames as soon as its look-ahead allows.
2. `MouthRenderer`: a frame, its face landmarks and its planned mouth give a new frame.

This module sits on the lowest floor of the package (beside `errors` and `io/`): the
renderers implement these seams, the generators compose them, the pipeline and live mode
drive them.
"""
from __future__ import annotations

import abc
from typing import List, Optional, Protocol, Sequence

import numpy as np

from .io.audio import SAMPLE_RATE, float_samples, frame_count


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

    def stream(self, fps: float, lookahead_s: Optional[float] = None) -> "SoundStream":
        """A planner fed with chunks of sound (see `SoundStream`) that hands out a frame once
        the sound `lookahead_s` after it has arrived (None: the stage's own `lookahead_s`, all
        that it reads). By default the whole plan is made again on the sound so far
        (`Replanned`); a stage may return a cheaper causal planner of its own."""
        return Replanned(self, fps, lookahead_s)


class SoundStream(abc.ABC):
    """A planner fed with chunks of sound: `feed` returns the mouths of the frames that became
    final, in order; `finish` those still waiting when the sound ends. It counts what it has
    handed out (`frames_out`) and heard (`samples`), and says how much sound after a frame it
    waits for (`lookahead_s`, seconds; None: until the sound ends)."""

    frames_out: int = 0  # frames handed out so far
    samples: int = 0  # sound received so far, in samples at SAMPLE_RATE
    lookahead_s: Optional[float] = None

    @abc.abstractmethod
    def feed(self, chunk: np.ndarray) -> np.ndarray:
        """Adds `chunk` (float32 or int16 mono at 16 kHz); returns the mouths of the frames that
        became final, in order (an empty array of the plan's shape when none did)."""

    @abc.abstractmethod
    def finish(self) -> np.ndarray:
        """The mouths of every frame not handed out yet (the sound has ended)."""


class Replanned(SoundStream):
    """The generic `SoundStream`: plans the whole sound received so far again whenever frames
    became final (frame time + look-ahead heard), or at `finish()` for a stage that needs the
    whole sound (whatever look-ahead is asked). The frames handed out equal those of `plan` on the
    sound received so far."""

    def __init__(self, stage: SoundToMouth, fps: float, lookahead_s: Optional[float] = None):
        self.stage, self.fps = stage, fps
        # a stage that needs the whole sound answers at the end, whatever the look-ahead asked
        self.lookahead_s = None if stage.lookahead_s is None else \
            stage.lookahead_s if lookahead_s is None else float(lookahead_s)
        self._chunks: List[np.ndarray] = []
        self.samples = 0
        self.frames_out = 0
        self._empty: Optional[np.ndarray] = None  # no frames, in the plan's shape

    def feed(self, chunk: np.ndarray) -> np.ndarray:
        self._chunks.append(float_samples(chunk))
        self.samples += self._chunks[-1].size
        if self.lookahead_s is None:
            return self._take(0)
        ready_s = self.samples / SAMPLE_RATE - self.lookahead_s
        return self._take(max(0, int(np.floor(ready_s * self.fps))))

    def finish(self) -> np.ndarray:
        return self._take(frame_count(self.samples, self.fps) if self.samples else 0)

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
