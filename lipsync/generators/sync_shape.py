"""The shaping that the offline planner (`sync.plan_mouths`) and the causal one of a stream
(`sync_live.LivePlan`) share: from the model's output and the loudness drive to the person's
canonical mouths, and the one pause rule (where the mouth rests).

The model's output (range units) has its opening averaged with the loudness envelope, goes
through the person's style map and keeps SHAPE_DETAIL of its lip shape beyond the opening
(`styled`); it is smoothed over time, rests over pauses, and is scaled to the person's range
on their rest shape (`placed`).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

from ..io import audio as audio_lib
from ..io.features import level_span
from . import geometry
from .geometry import OPEN_BASIS, opening_of

SMOOTH_SIGMA = 0.5  # frames, on the planned shapes
MIN_PAUSE_S = 0.3  # quieter stretches at least this long are pauses: the mouth rests
OPEN_PAUSE_S = 0.15  # a stream: a quiet stretch running on to the newest sound rests the mouth once this long
PAUSE_LEVEL = 0.2  # a step is quiet below this share of the way from the clip's pauses to its loud moments
PAUSE_RAMP_S = 0.08  # the mouth closes (and opens again) over this long inside a pause
ENVELOPE_WEIGHT = 0.5  # share of the loudness envelope in the opening
ENVELOPE_PEAK = 0.85  # the opening (in units of the person's range) of the sound's loud moments
# Share of the model's lip shape beyond its opening (width, rounding); the rest of the shape is the plain opening
# pattern of the person's rest shape. Dub test means on the development clips, 1 / 0.5 / 0: speech corr 0.34 / 0.35 /
# 0.37, lmd 5.7 / 5.2 / 5.0, leak 0.34 / 0.31 / 0.25; within noise on the held-out speakers.
SHAPE_DETAIL = 0.5


@dataclasses.dataclass
class Person:
    """What the sync model knows about the face in the input."""

    rest: np.ndarray  # (20, 2) canonical mouth at rest
    models: list  # SyncModel ensemble
    span: float = geometry.DEFAULT_SPAN  # the person's opening range (inter-ocular units): closed to wide open
    style: Optional[np.ndarray] = None  # (2, 20, 2) personal scale and shift of the model's output
    personal: bool = False


def quiet_steps(level: np.ndarray, span: Tuple[float, float]) -> np.ndarray:
    """bool per step of a level track (the mean log-mel of each step): quieter than PAUSE_LEVEL of
    the way from the pause level `span[0]` to the loud level `span[1]`."""
    return level < span[0] + PAUSE_LEVEL * (span[1] - span[0])


def pause_weights(quiet: np.ndarray, open_start: bool = False, open_end: bool = False) -> np.ndarray:
    """The pause rule, float64 per step of `quiet` (bool, a step is quiet): 0 inside a pause, 1
    where the mouth speaks, ramping over PAUSE_RAMP_S at a pause's ends.

    A run of quiet steps is a pause when it lasts MIN_PAUSE_S. No ramp at the first or the last
    step (a sound that starts or ends quiet). A stream sees only part of the sound: with
    `open_start` a run at the first step may have begun before it (it counts as long enough),
    and with `open_end` a run that reaches the newest step has no known end (it is a pause once
    OPEN_PAUSE_S long).
    """
    n, step_s = len(quiet), 1.0 / audio_lib.MEL_FRAMES_PER_SECOND
    depth = np.zeros(n)  # how far (seconds) each step lies inside its pause; 0 outside pauses
    for a, b in zip(*_runs(quiet)):
        length = np.inf if open_start and a == 0 else (b - a) * step_s
        if length < (OPEN_PAUSE_S if open_end and b == n else MIN_PAUSE_S):
            continue
        k = np.arange(b - a)
        from_start = np.inf if a == 0 else (k + 1) * step_s
        from_end = np.inf if b == n else (b - a - k) * step_s
        depth[a:b] = np.minimum(from_start, from_end)
    return 1.0 - np.clip(depth / PAUSE_RAMP_S, 0.0, 1.0)


def quiet_weight(mel: np.ndarray, times: np.ndarray) -> np.ndarray:
    """float32 (len(times),): the pause rule (`pause_weights`) of a whole sound, given its raw
    log-mel (80, T), at the frames' `times`: 0 where the mouth rests (and everywhere for a sound
    without speech, and past its end), 1 where it speaks."""
    level = mel.mean(axis=0)
    span = level_span(level)
    if span is None:
        return np.zeros(len(times), np.float32)
    weight = pause_weights(quiet_steps(level, span))
    idx = np.clip(np.round(times * audio_lib.MEL_FRAMES_PER_SECOND).astype(int), 0, len(level) - 1)
    out = weight[idx]
    out[times * audio_lib.MEL_FRAMES_PER_SECOND >= len(level)] = 0.0  # past the sound's end
    return out.astype(np.float32)


def _runs(mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Starts and ends (exclusive) of the runs of True in a bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return edges[::2], edges[1::2]


def styled(person: Person, disp: np.ndarray, drive: np.ndarray) -> np.ndarray:
    """The model's output (n, 20, 2) with its opening averaged with the loudness `drive` (n,),
    through the person's style map, keeping SHAPE_DETAIL of its lip shape beyond the opening:
    the displacement to smooth over time (range units)."""
    if ENVELOPE_WEIGHT:  # the sound's loudness, a second opinion on the opening
        opening = opening_of(disp)
        wanted = (1 - ENVELOPE_WEIGHT) * opening + ENVELOPE_WEIGHT * ENVELOPE_PEAK * drive
        disp = disp + (wanted - opening)[:, None, None] * OPEN_BASIS
    if person.style is not None:
        disp = disp * person.style[0] + person.style[1]
    opening = opening_of(disp)
    return SHAPE_DETAIL * disp + (1 - SHAPE_DETAIL) * opening[:, None, None] * OPEN_BASIS


def placed(person: Person, disp: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Canonical mouths (n, 20, 2): the smoothed displacement, resting where `weight` is 0,
    scaled to the person's range and put on their rest shape."""
    return (person.rest + disp * weight[:, None, None] * person.span).astype(np.float32)
