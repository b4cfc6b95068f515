"""The shared mouth geometry of the generators: where each landmark moves when the mouth
opens, and the person's range of openings and rest shape (in the canonical face frame of
`lipsync.face.landmarks`).

A person's *rest* shape is the mean canonical mouth of their most closed frames; the sync
model predicts each frame's mouth as a displacement from that rest shape, which makes the
target largely the same across speakers.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..face.landmarks import INNER_LIP_GAPS, JAW, MOUTH, face_down, inter_ocular, mouth_opening

DEFAULT_SPAN = 0.22  # opening range (inter-ocular units) assumed for a still photo
MIN_SPAN = 0.12

# How far each landmark moves, as a fraction of the change in inner-lip opening.
# Negative: up (upper lip), positive: down (lower lip, jaw).
MOVE = np.zeros(68, np.float32)
MOVE[[49, 50, 51, 52, 53]] = -0.12
MOVE[[61, 62, 63]] = -0.15
MOVE[[48, 54]] = 0.30
MOVE[[60, 64]] = 0.35
MOVE[[55, 59]] = 0.60
MOVE[[56, 58]] = 0.78
MOVE[57] = 0.85
MOVE[[65, 66, 67]] = 0.85
MOVE[JAW] = [0, 0, 0, 0.12, 0.30, 0.50, 0.70, 0.82, 0.85, 0.82, 0.70, 0.50, 0.30, 0.12, 0, 0, 0]
OPEN_BASIS = np.stack([np.zeros(len(MOUTH)), MOVE[MOUTH]], axis=1).astype(np.float32)  # +1 opening, canonical
N_MOUTH = len(MOUTH)  # 20 landmarks -> 40 numbers
UPPER_LIP_TOP = np.array([50, 51, 52]) - MOUTH[0]  # indices inside the 20 mouth points
GAP_PAIRS = INNER_LIP_GAPS - MOUTH[0]  # the inner-lip pairs among the 20 mouth points
REST_PERCENTILE = 20  # frames at or below this opening count as closed (the training targets' rest)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The person's mouth openings at rest and wide open, in inter-ocular units."""

    rest: float
    peak: float

    def opening(self, drive: np.ndarray) -> np.ndarray:
        return self.rest + (self.peak - self.rest) * drive


def calibrate(openings: np.ndarray) -> Calibration:
    """Range of mouth openings from the person's own frames (NaN for frames without a face).

    With few frames or little motion (a photo, a silent face) a typical range is assumed.
    """
    o = openings[~np.isnan(openings)]
    if o.size == 0:
        return Calibration(0.0, DEFAULT_SPAN)
    rest = float(min(np.percentile(o, 5), 0.04))
    if o.size < 25:
        return Calibration(rest, rest + DEFAULT_SPAN)
    peak = float(np.clip(np.percentile(o, 95), rest + MIN_SPAN, rest + 0.35))
    return Calibration(rest, peak)


def target_points(points: np.ndarray, opening: float) -> np.ndarray:
    """The landmarks moved so that the inner-lip opening becomes `opening` (inter-ocular units).

    The lower inner lip never crosses above the upper one (a closing mouth stops at closed).
    """
    down = face_down(points)
    delta = (opening - mouth_opening(points)) * inter_ocular(points)
    return uncross_lips(points + np.outer(MOVE * delta, down).astype(np.float32), down)


def uncross_lips(points: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Moves any lower inner-lip point that crossed above its upper partner back to closed."""
    out = points.astype(np.float32).copy()
    for up, low in INNER_LIP_GAPS:
        gap = float((out[low] - out[up]) @ down)
        if gap < 0:
            out[low] -= gap * down
    return out


def rest_shape(mouths: np.ndarray, openings: np.ndarray, percentile: float = REST_PERCENTILE) -> np.ndarray:
    """Mean canonical mouth (20, 2) over the frames at or below the `percentile` of openings
    (NaN frames ignored)."""
    ok = ~np.isnan(openings)
    if not ok.any():
        raise ValueError("no frame with a face")
    limit = np.percentile(openings[ok], percentile)
    return mouths[ok & (openings <= limit + 1e-9)].mean(0).astype(np.float32)


def opening_of(mouths: np.ndarray) -> np.ndarray:
    """Mean inner-lip gap of (..., 20, 2) mouth points (the units of the points)."""
    gaps = mouths[..., GAP_PAIRS[:, 1], :] - mouths[..., GAP_PAIRS[:, 0], :]
    return np.linalg.norm(gaps, axis=-1).mean(-1)


def targets(mouths: np.ndarray) -> np.ndarray:
    """(n, 20, 2) canonical mouths -> displacements from the rest shape in units of the clip's
    opening range (NaN rows stay NaN)."""
    opens = opening_of(mouths)
    rest = rest_shape(mouths, opens)
    cal = calibrate(opens)
    return ((mouths - rest) / (cal.peak - cal.rest)).astype(np.float32)
