"""A photo comes alive: natural blinks and a slight head motion under the speaking mouth.

A still face that only moves its lips reads as a puppet. For a photo input (and only there:
a video keeps everything above the nose as it was) every output frame is first given a small
head motion (a slow, smooth sway of the whole picture: a fraction of a degree of roll and a
few hundredths of the eye distance of shift) and, every few seconds, a blink (the upper
eyelids drawn down over the eyes with a small mesh); then the mouth is drawn by the wrapped
renderer on the moved landmarks. Off with `--still`. Deterministic: the same input gives
the same motion.
"""
from __future__ import annotations

import functools
from typing import List, Sequence

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ..face.landmarks import LEFT_EYE, RIGHT_EYE, inter_ocular
from ..stages import MouthRenderer
from .mesh import _piecewise_affine_map

BLINK_GAP_S = (2.0, 6.0)  # seconds between blinks: uniform in this range
BLINK_CLOSE_S = 0.08  # the lids come down in this long...
BLINK_OPEN_S = 0.14  # ...and go up again in this long
BLINK_DEPTH = 0.9  # share of the eye's opening the upper lid covers at the blink's deepest
HEAD_ROLL_DEG = 0.8  # amplitude of the head's roll
HEAD_SHIFT = 0.03  # amplitude of the head's shift, inter-ocular units
HEAD_PERIODS_S = (4.3, 6.7, 9.1)  # the sway is a sum of slow sines of these periods


def blink_amount(t: np.ndarray, duration: float, seed: int = 0) -> np.ndarray:
    """float (len(t),): how closed the eyes are (0 open .. BLINK_DEPTH) at times `t` (seconds)
    of a clip `duration` long."""
    rng = np.random.default_rng(seed)
    starts, at = [], float(rng.uniform(0.5, BLINK_GAP_S[0]))
    while at < duration:
        starts.append(at)
        at += float(rng.uniform(*BLINK_GAP_S))
    out = np.zeros(len(t))
    for s in starts:
        closing = np.clip((t - s) / BLINK_CLOSE_S, 0, 1)
        opening = np.clip((t - s - BLINK_CLOSE_S) / BLINK_OPEN_S, 0, 1)
        out = np.maximum(out, np.where(t < s + BLINK_CLOSE_S, closing, 1 - opening) * (t >= s))
    return out * BLINK_DEPTH


@functools.lru_cache(maxsize=8)
def _phases(seed: int) -> np.ndarray:
    """(3, len(HEAD_PERIODS_S)) phases of the sway's sines: drawn once per seed, not per frame."""
    return np.random.default_rng(seed + 1).uniform(0, 2 * np.pi, (3, len(HEAD_PERIODS_S)))


def head_motion(t: float, seed: int = 0) -> np.ndarray:
    """(roll in degrees, shift x, shift y in inter-ocular units) of the head at time `t`."""
    waves = np.sin(2 * np.pi * t / np.array(HEAD_PERIODS_S) + _phases(seed)).mean(1)
    return waves * np.array([HEAD_ROLL_DEG, HEAD_SHIFT, HEAD_SHIFT * 0.6]) * 1.6


def close_eyes(frame: np.ndarray, points: np.ndarray, amount: float) -> tuple:
    """(frame, landmarks) with the upper eyelids drawn down by `amount` of each eye's opening."""
    if amount <= 0.01:
        return frame, points
    out, moved = frame.copy(), points.copy()
    h, w = frame.shape[:2]
    for eye in (LEFT_EYE, RIGHT_EYE):
        p = points[eye].astype(np.float64)
        upper, lower = [1, 2], [5, 4]  # upper lid points and the lower ones under them
        new = p.copy()
        gap = p[lower] - p[upper]
        new[upper] = p[upper] + gap * amount
        new[lower] = p[lower] - gap * amount * 0.1
        moved[eye] = new
        width = float(np.linalg.norm(p[3] - p[0]))
        centre = p.mean(0)
        ring = centre + width * np.array([[-1.0, -0.8], [0, -1.0], [1.0, -0.8], [1.2, 0], [1.0, 0.8], [0, 1.0],
                                          [-1.0, 0.8], [-1.2, 0]])
        src, dst = np.concatenate([p, ring]), np.concatenate([new, ring])
        x0, y0 = np.maximum(0, np.floor(ring.min(0))).astype(int)
        x1, y1 = np.minimum([w, h], np.ceil(ring.max(0)) + 1).astype(int)
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        mapping = _piecewise_affine_map(src, dst, Delaunay(dst).simplices, x0, y0, x1 - x0, y1 - y0)
        out[y0:y1, x0:x1] = cv2.remap(frame, mapping[..., 0], mapping[..., 1], cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REFLECT)
    return out, moved


class AliveRenderer(MouthRenderer):
    """Gives each frame a head motion and blinks, then lets `renderer` draw the mouth."""

    def __init__(self, renderer: MouthRenderer, fps: float, duration: float, seed: int = 0):
        self.renderer, self.fps, self.seed = renderer, fps, seed
        self.blinks = lambda t: blink_amount(np.mod(t, duration), duration, seed)  # a longer stream: they repeat
        self.frames_done = 0

    def render(self, frames: Sequence[np.ndarray], faces: Sequence[np.ndarray], mouths) -> List[np.ndarray]:
        times = (self.frames_done + np.arange(len(frames))) / self.fps
        self.frames_done += len(frames)
        moved_frames, moved_faces = [], []
        for frame, points, t, blink in zip(frames, faces, times, self.blinks(times)):
            roll, dx, dy = head_motion(float(t), self.seed)
            iod = inter_ocular(points)
            centre = tuple(float(c) for c in points[[8, 27]].mean(0))  # turns about the middle of the face
            matrix = cv2.getRotationMatrix2D(centre, roll, 1.0)
            matrix[:, 2] += np.array([dx, dy]) * iod
            moved = cv2.warpAffine(frame, matrix, frame.shape[1::-1], flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT101)
            points = (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
            moved, points = close_eyes(moved, points, float(blink))
            moved_frames.append(moved)
            moved_faces.append(points)
        return self.renderer.render(moved_frames, moved_faces, mouths)
