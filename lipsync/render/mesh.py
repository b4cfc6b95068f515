"""The mesh renderer: moves the person's own lips and jaw to a wanted shape.

A piecewise-affine mesh over the 68 landmarks and a ring of fixed anchors around the lower
face is bent from the frame's landmarks to the wanted ones; the opened mouth is filled with
the person's own mouth interior (teeth included) taken from the input frame where the mouth
is most open, or, for a closed-mouth photo, a dark cavity with a hint of upper teeth. Only
pixels below mid-nose and inside the mesh change; everything else is copied exactly.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ..face.exemplar import MouthExemplar
from ..face.landmarks import INNER_LIP, JAW, MOUTH, NOSE_BRIDGE_LOW, face_down, inter_ocular, mouth_opening
from ..generators.base import MouthRenderer


def synthetic_exemplar() -> MouthExemplar:
    """A generic open mouth: dark cavity, tongue shade low, a band of upper teeth."""
    h, w = 60, 100
    img = np.zeros((h, w, 3), np.float32)
    y = np.linspace(0, 1, h)[:, None]
    img[:] = (np.array([30, 32, 70]) * (1 - 0.5 * np.abs(y - 0.55)))[:, None, :].reshape(h, 1, 3)
    teeth = (y[:, 0] < 0.28)
    img[teeth] = [200, 208, 215]
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    inner = np.array([[5, 30], [25, 8], [50, 5], [75, 8], [95, 30], [75, 52], [50, 55], [25, 52]], np.float32)
    return MouthExemplar(np.clip(img, 0, 255).astype(np.uint8), inner, 0.3)


LOWER_FACE_MARGIN = 0.12  # inter-ocular units around the lower face (before and after the move) that may change


def lower_face_mask(points: np.ndarray, shape: Sequence[int], margin: float) -> np.ndarray:
    """float32 (h, w) weights: 1 over the lower face of one or more landmark sets ((68 k, 2),
    pixels of the region), fading to 0 over `margin` pixels outside it."""
    mask = np.zeros(shape[:2], np.uint8)
    for p in points.reshape(-1, 68, 2):
        outline = np.concatenate([p[JAW[2:15]], p[[35, 34, 33, 32, 31]]])
        cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 1)
    grow = max(1, int(round(margin)))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(0.5, margin / 2))


def blend(under: np.ndarray, over: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """uint8 image: `over` where weight (h, w) is 1, `under` where it is 0 (exactly), mixed between."""
    out = under.astype(np.float32) + weight[..., None] * (over.astype(np.float32) - under)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _piecewise_affine_map(src: np.ndarray, dst: np.ndarray, triangles: np.ndarray, x0: int, y0: int,
                          w: int, h: int) -> np.ndarray:
    """Backward map of a triangle-mesh warp over the (w, h) region at (x0, y0).

    src, dst: (n, 2) mesh vertices before and after the warp; triangles: (m, 3) vertex
    indices. Returns float32 (h, w, 2): for each output pixel, where to sample the input.
    Pixels outside every triangle map to themselves. Collapsed triangles (a mouth
    closing) are simply skipped; they cover no output pixel.
    """
    offset = np.array([x0, y0])
    d = dst[triangles] - offset  # (m, 3, 2)
    area = (d[:, 1, 0] - d[:, 0, 0]) * (d[:, 2, 1] - d[:, 0, 1]) - (d[:, 2, 0] - d[:, 0, 0]) * (d[:, 1, 1] - d[:, 0, 1])
    keep = np.abs(area) >= 1e-3
    # per triangle, the affine map taking its dst corners to its src corners: [x y 1] @ M = src
    corners = np.concatenate([d[keep], np.ones((int(keep.sum()), 3, 1))], axis=2)
    affines = np.zeros((len(triangles), 3, 2), np.float32)
    affines[keep] = np.linalg.solve(corners, src[triangles[keep]] - offset)
    label = np.full((h, w), -1, np.int32)
    fixed_point = np.round(d * 16).astype(np.int32)
    for k in np.flatnonzero(keep):
        cv2.fillConvexPoly(label, fixed_point[k], int(k), lineType=cv2.LINE_8, shift=4)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    inside = label >= 0
    a = affines[label[inside]]
    out = np.stack([xx, yy], axis=-1)
    px, py = xx[inside], yy[inside]
    out[inside, 0] = a[:, 0, 0] * px + a[:, 1, 0] * py + a[:, 2, 0]
    out[inside, 1] = a[:, 0, 1] * px + a[:, 1, 1] * py + a[:, 2, 1]
    return out + offset.astype(np.float32)


class MeshRenderer(MouthRenderer):
    """Moves each frame's lower face so that its landmarks go where `place(points, mouth)`
    puts them (68, 2), and paints the person's mouth interior into lips opened wider.

    `place` turns a frame's landmarks and its planned mouth (whatever the sound stage
    plans: an opening, a canonical shape) into the wanted landmarks.
    """

    def __init__(self, place: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 exemplar: Optional[MouthExemplar] = None, pads: Sequence[int] = (0, 0, 0, 0)):
        self.place = place
        self.exemplar = exemplar if exemplar is not None else synthetic_exemplar()
        self.pads = tuple(pads)  # extra margin (top, bottom, left, right) in pixels around the changed region

    def render(self, frames: Sequence[np.ndarray], faces: Sequence[np.ndarray], mouths) -> List[np.ndarray]:
        return [self.warp(f, p, self.place(p, m)) for f, p, m in zip(frames, faces, mouths)]

    def warp(self, frame: np.ndarray, points: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Moves the lower face so that landmarks `points` go to `dst` (both (68, 2)); a new frame."""
        bent = self.bend(frame, points, dst)
        if bent is None:
            return frame
        out, (x0, y0, x1, y1) = bent
        out[y0:y1, x0:x1] = self._fill_mouth(out[y0:y1, x0:x1], mouth_opening(points), dst, x0, y0)
        return out

    def bend(self, frame: np.ndarray, points: np.ndarray, dst: np.ndarray):
        """(new frame, (x0, y0, x1, y1) of the region that may have changed) with the lower face
        moved from `points` to `dst`, or None when the face is too small to change.

        Only the lower face and a margin around it change: a background edge beside the jaw
        stays where it was.
        """
        h, w = frame.shape[:2]
        iod = inter_ocular(points)
        if iod < 8:  # too small a face to change anything useful
            return None
        down = face_down(points)
        # a mesh over the landmarks and a ring of fixed anchors around the lower face
        below = points[JAW[2:15]] + down * 0.9 * iod
        centre = points[MOUTH].mean(0)
        ring = centre + (points[JAW[[0, 16]]] - centre) * 1.3
        mesh_src = np.concatenate([points, below, ring]).astype(np.float64)
        mesh_dst = np.concatenate([dst, below, ring]).astype(np.float64)
        top, bottom, left, right = self.pads
        region = np.concatenate([mesh_src, mesh_dst])
        x0 = int(max(0, np.floor(region[:, 0].min() - left)))
        x1 = int(min(w, np.ceil(region[:, 0].max() + right + 1)))
        y0 = int(max(0, np.floor(points[NOSE_BRIDGE_LOW, 1] - top)))
        y1 = int(min(h, np.ceil(region[:, 1].max() + bottom + 1)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        lower = np.flatnonzero(mesh_src[:, 1] >= points[NOSE_BRIDGE_LOW, 1] - 1e-3)  # only the part of the face that moves
        triangles = lower[Delaunay(mesh_src[lower]).simplices]
        mapping = _piecewise_affine_map(mesh_src, mesh_dst, triangles, x0, y0, x1 - x0, y1 - y0)
        # where the mesh does not move, the map is the identity and remap copies pixels exactly
        roi = cv2.remap(frame, mapping[..., 0], mapping[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        keep = lower_face_mask(np.concatenate([points, dst]) - [x0, y0], (y1 - y0, x1 - x0), iod * LOWER_FACE_MARGIN)
        if self.pads == (0, 0, 0, 0):  # asked-for extra margins: the whole region may change
            roi = blend(frame[y0:y1, x0:x1], roi, keep)
        out = frame.copy()
        out[y0:y1, x0:x1] = roi
        return out, (x0, y0, x1, y1)

    def _fill_mouth(self, roi: np.ndarray, shown: float, dst: np.ndarray, x0: int, y0: int) -> np.ndarray:
        """Paints the person's mouth interior where the lips `dst` open wider than the `shown`
        opening (inter-ocular units) whose interior the pixels already hold."""
        opening = mouth_opening(dst)
        amount = float(np.clip((opening - shown) / 0.05, 0.0, 1.0))
        if amount <= 0.0 or opening < 0.03:
            return roi
        inner = (dst[INNER_LIP] - [x0, y0]).astype(np.float32)
        ex = self.exemplar
        matrix, _ = cv2.estimateAffine2D(ex.inner.astype(np.float32), inner, method=cv2.LMEDS)
        if matrix is None:
            return roi
        h, w = roi.shape[:2]
        cavity = cv2.warpAffine(ex.image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cavity = self._match_colour(cavity, roi, inner)
        mask = np.zeros((h, w), np.float32)
        cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1.0)
        mask = cv2.GaussianBlur(mask, (0, 0), 1.0) * amount
        return (roi * (1 - mask[..., None]) + cavity * mask[..., None]).astype(np.uint8)

    @staticmethod
    def _match_colour(cavity: np.ndarray, roi: np.ndarray, inner: np.ndarray) -> np.ndarray:
        """Scales the warped exemplar's colours so that its lips match this frame's lips."""
        ring = np.zeros(roi.shape[:2], np.uint8)
        centre = inner.mean(0)
        cv2.fillPoly(ring, [np.round(centre + (inner - centre) * 1.6).astype(np.int32)], 1)
        cv2.fillPoly(ring, [np.round(inner).astype(np.int32)], 0)
        sel = ring.astype(bool)
        if sel.sum() < 10:
            return cavity
        gain = (roi[sel].mean(0) + 1.0) / (cavity[sel].mean(0) + 1.0)
        return np.clip(cavity * np.clip(gain, 0.6, 1.6), 0, 255).astype(np.uint8)
