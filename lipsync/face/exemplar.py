"""Samples of the person's open mouth, collected while the face is tracked: the mesh
renderer paints them into mouths it opens wider than the frame's own."""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from .landmarks import INNER_LIP, MOUTH, mouth_opening


@dataclasses.dataclass
class MouthExemplar:
    """A crop of the person's open mouth: image (h, w, 3) uint8 BGR and its inner lip (8, 2)."""

    image: np.ndarray
    inner: np.ndarray
    opening: float

    @staticmethod
    def from_frame(frame: np.ndarray, points: np.ndarray) -> "MouthExemplar":
        lo = points[MOUTH].min(0)
        hi = points[MOUTH].max(0)
        pad = 0.3 * (hi - lo).max()
        x0, y0 = np.maximum(0, np.floor(lo - pad)).astype(int)
        x1, y1 = np.minimum([frame.shape[1], frame.shape[0]], np.ceil(hi + pad)).astype(int)
        return MouthExemplar(frame[y0:y1, x0:x1].copy(), points[INNER_LIP] - [x0, y0], mouth_opening(points))


class ExemplarPicker:
    """Keeps the few most open mouths seen while tracking; `best()` takes a robust one."""

    MIN_OPENING = 0.10

    def __init__(self, keep: int = 5):
        self.keep = keep
        self.items: list = []

    def offer(self, frame: np.ndarray, points: Optional[np.ndarray]) -> None:
        if points is None:
            return
        o = mouth_opening(points)
        if o < self.MIN_OPENING or o > 0.6 or (len(self.items) == self.keep and o <= self.items[-1].opening):
            return
        self.items.append(MouthExemplar.from_frame(frame, points))
        self.items.sort(key=lambda e: -e.opening)
        del self.items[self.keep:]

    def best(self) -> Optional[MouthExemplar]:
        return self.items[len(self.items) // 2] if self.items else None
