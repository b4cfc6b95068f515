"""The 68-point face layout (iBUG 300-W numbering) and the measures taken on it.

One landmark set is a float32 array (68, 2) in pixels; a track is (n, 68, 2) with NaN rows
for frames without a face. Every module that needs a landmark group, the inner-lip pairs
or the mouth opening takes it from here.

The canonical (pose-free) face frame: origin midway between the four eye corners (landmarks
36, 39, 42, 45), x along the eye line, y pointing down the face, one unit = the distance
between the eye centres. Eye corners barely move when a person blinks or speaks, so the
mouth's shape in this frame changes with speech and expression only, not with head
position, roll or size.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

N_POINTS = 68
JAW = np.arange(0, 17)
BROWS = np.arange(17, 27)
NOSE = np.arange(27, 36)
LEFT_EYE = np.arange(36, 42)
RIGHT_EYE = np.arange(42, 48)
MOUTH = np.arange(48, 68)
OUTER_LIP = np.arange(48, 60)
INNER_LIP = np.arange(60, 68)
INNER_LIP_GAPS = np.array([[61, 67], [62, 66], [63, 65]])  # (upper, lower) pairs whose gaps make the opening
STABLE = np.array([27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45])  # nose and eye corners: move with the head only
EYE_CORNERS = np.array([36, 39, 42, 45])  # the canonical frame's anchors
NOSE_BRIDGE_LOW = 29  # nothing above this landmark's row is changed by the mesh renderer


def inter_ocular(points: np.ndarray) -> float:
    """Distance between the eye centres of one (68, 2) landmark set."""
    return float(np.linalg.norm(points[LEFT_EYE].mean(0) - points[RIGHT_EYE].mean(0)))


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip opening (mean of the three vertical gaps) in inter-ocular units."""
    gaps = np.linalg.norm(points[INNER_LIP_GAPS[:, 0]] - points[INNER_LIP_GAPS[:, 1]], axis=1)
    return float(gaps.mean() / max(1e-6, inter_ocular(points)))


def openings(track: np.ndarray) -> np.ndarray:
    """Inner-lip opening per frame of a (n, 68, 2) track, in inter-ocular units: float64 (n,), NaN without a face."""
    return np.array([np.nan if np.isnan(p[0, 0]) else mouth_opening(p) for p in track], np.float64)


def face_down(points: np.ndarray) -> np.ndarray:
    """Unit vector pointing from the eyes towards the chin, perpendicular to the eye line."""
    eye = points[RIGHT_EYE].mean(0) - points[LEFT_EYE].mean(0)
    return (np.array([-eye[1], eye[0]]) / max(1e-6, float(np.linalg.norm(eye)))).astype(np.float32)


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
    out = np.full((len(track), len(MOUTH), 2), np.nan, np.float32)
    for i, p in enumerate(track):
        if not np.isnan(p[0, 0]):
            out[i] = to_canonical(p)
    return out
