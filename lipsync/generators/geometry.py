"""The shared mouth geometry of the generators: where each landmark moves when the mouth
opens, the pose-free (canonical) face frame, and the person's range of openings.

Canonical frame: origin midway between the four eye corners (landmarks 36, 39, 42, 45),
x along the eye line, y pointing down the face, one unit = the distance between the eye
centres. Eye corners barely move when a person blinks or speaks, so the mouth's shape in
this frame changes with speech and expression only, not with head position, roll or size.

A person's *rest* shape is the mean canonical mouth of their most closed frames; the sync
model predicts each frame's mouth as a displacement from that rest shape, which makes the
target largely the same across speakers.
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

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
EYE_CORNERS = np.array([36, 39, 42, 45])
N_MOUTH = len(MOUTH)  # 20 landmarks -> 40 numbers
UPPER_LIP_TOP = np.array([50, 51, 52]) - MOUTH[0]  # indices inside the 20 mouth points
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


def frame_axes(points: np.ndarray) -> Tuple[np.ndarray, np.ndarray, float]:
    """(origin (2,), rotation (2, 2) with rows x and y axes, scale) of one (68, 2) landmark set."""
    corners = points[EYE_CORNERS].astype(np.float64)
    origin = corners.mean(0)
    eye = corners[2:].mean(0) - corners[:2].mean(0)
    x = eye / max(1e-9, float(np.linalg.norm(eye)))
    rot = np.array([x, [-x[1], x[0]]])
    return origin, rot, max(1e-6, inter_ocular(points))


def to_canonical(points: np.ndarray, which: np.ndarray = MOUTH) -> np.ndarray:
    """Landmarks `which` of one face in the canonical frame: float32 (len(which), 2)."""
    origin, rot, scale = frame_axes(points)
    return ((points[which] - origin) @ rot.T / scale).astype(np.float32)


def from_canonical(shape: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Canonical coordinates (k, 2) back to pixels in the pose of the face `points` (68, 2)."""
    origin, rot, scale = frame_axes(points)
    return (shape * scale @ rot + origin).astype(np.float32)


def canonical_mouths(track: np.ndarray) -> np.ndarray:
    """(n, 20, 2) canonical mouths of a (n, 68, 2) track; NaN rows where there is no face."""
    out = np.full((len(track), N_MOUTH, 2), np.nan, np.float32)
    for i, p in enumerate(track):
        if not np.isnan(p[0, 0]):
            out[i] = to_canonical(p)
    return out


def rest_shape(mouths: np.ndarray, openings: np.ndarray, percentile: float = REST_PERCENTILE) -> np.ndarray:
    """Mean canonical mouth (20, 2) over the frames at or below the `percentile` of openings
    (NaN frames ignored)."""
    ok = ~np.isnan(openings)
    if not ok.any():
        raise ValueError("no frame with a face")
    limit = np.percentile(openings[ok], percentile)
    return mouths[ok & (openings <= limit + 1e-9)].mean(0).astype(np.float32)
