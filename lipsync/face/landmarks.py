"""The 68-point face layout (iBUG 300-W numbering) and the measures taken on it.

One landmark set is a float32 array (68, 2) in pixels; a track is (n, 68, 2) with NaN rows
for frames without a face. Every module that needs a landmark group, the inner-lip pairs
or the mouth opening takes it from here.
"""
from __future__ import annotations

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
