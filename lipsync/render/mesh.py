"""The mesh renderer: moves the person's own lips and jaw to a wanted shape.

A piecewise-affine mesh over the 68 landmarks and a ring of fixed anchors around the lower
face is bent from the frame's landmarks to the wanted ones; the opened mouth is filled with
the person's own mouth interior (teeth included) taken from the input frame where the mouth
is most open, or, for a closed-mouth photo, an interior painted in the person's lip colours. Only
pixels below mid-nose and inside the mesh change; everything else is copied exactly.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ..face.exemplar import MouthExemplar
from ..face.landmarks import INNER_LIP, JAW, MOUTH, NOSE_BRIDGE_LOW, face_down, inter_ocular, mouth_opening
from ..stages import MouthRenderer


TEETH_HEIGHT = 0.07  # inter-ocular units: how much of the upper teeth shows below the upper lip
INTERIOR_BLUR = 0.018  # inter-ocular units (plus half a pixel): the painted interior's softness


def painted_interior(shape, inner: np.ndarray, lips: np.ndarray, iod: float) -> np.ndarray:
    """float32 (h, w, 3) BGR: a mouth interior painted in the person's own colours, for mouths
    opened where no real open mouth was ever seen (a photo, a closed-mouth video).

    inner: the inner lip (8, 2) in pixels of the region of `shape`; lips: the mean BGR colour of
    the lips around it. A dark cavity shaded towards the corners and the back, the tongue
    low in the middle, the upper teeth under the upper lip (greyer towards the corners), then
    softened to a camera's sharpness.
    """
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    left, right = inner[0], inner[4]
    span = max(1.0, float(right[0] - left[0]))
    u = np.clip((xx - left[0]) / span, 0.0, 1.0)  # across the mouth, corner to corner
    side = np.abs(u - 0.5) * 2  # 0 in the middle, 1 at the corners
    top = np.interp(xx, inner[[0, 1, 2, 3, 4], 0], inner[[0, 1, 2, 3, 4], 1])  # upper inner lip at each column
    bottom = np.interp(xx, inner[[0, 7, 6, 5, 4], 0], inner[[0, 7, 6, 5, 4], 1])
    v = np.clip((yy - top) / np.maximum(bottom - top, 1.0), 0.0, 1.0)  # down the opening
    lips = np.asarray(lips, np.float32)
    cavity = lips * (0.30 - 0.12 * side)[..., None]
    tongue = np.clip((v - 0.55) / 0.45, 0, 1) * np.clip(1 - side * 1.3, 0, 1)
    cavity = cavity + (lips * 0.55 - cavity) * (0.7 * tongue)[..., None]
    teeth_colour = np.array([185.0, 192.0, 198.0]) * 0.55 + lips * 0.45  # in the mouth's shadow
    teeth = ((yy - top) < TEETH_HEIGHT * iod) & (side < 0.8)
    shade = (1.0 - 0.45 * side ** 2)[..., None]
    out = np.where(teeth[..., None], teeth_colour * shade * 0.85, cavity)
    return cv2.GaussianBlur(out.astype(np.float32), (0, 0), 0.5 + INTERIOR_BLUR * iod)


MAP_STEP_FROM = 80  # inter-ocular pixels from which mesh maps are computed every 2nd pixel (finer: thin lips)


def map_step(iod: float) -> int:
    """The grid step of a face's mesh maps: 2 for a large face, 1 where a lip is a few pixels thin."""
    return 2 if iod >= MAP_STEP_FROM else 1


LOWER_FACE_MARGIN = 0.12  # inter-ocular units around the lower face (before and after the move) that may change


def disk(radius: int) -> np.ndarray:
    """The round structuring element of a radius in pixels (for cv2.dilate and cv2.erode)."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def lower_face_mask(points: np.ndarray, shape: Sequence[int], margin: float) -> np.ndarray:
    """float32 (h, w) weights: 1 over the lower face of one or more landmark sets ((68 k, 2),
    pixels of the region), fading to 0 over `margin` pixels outside it."""
    mask = np.zeros(shape[:2], np.uint8)
    for p in points.reshape(-1, 68, 2):
        outline = np.concatenate([p[JAW[2:15]], p[[35, 34, 33, 32, 31]]])
        cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 1)
    mask = cv2.dilate(mask, disk(max(1, int(round(margin)))))
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(0.5, margin / 2))


def blend(under: np.ndarray, over: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """uint8 image: `over` where weight (h, w) is 1, `under` where it is 0 (exactly), mixed between."""
    out = under.astype(np.float32) + weight[..., None] * (over.astype(np.float32) - under)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _piecewise_affine_map(src: np.ndarray, dst: np.ndarray, triangles: np.ndarray, x0: int, y0: int,
                          w: int, h: int, step: int = 1) -> np.ndarray:
    """Backward map of a triangle-mesh warp over the (w, h) region at (x0, y0).

    src, dst: (n, 2) mesh vertices before and after the warp; triangles: (m, 3) vertex
    indices. Returns float32 (h, w, 2): for each output pixel, where to sample the input.
    Pixels outside every triangle map to themselves. Collapsed triangles (a mouth
    closing) are simply skipped; they cover no output pixel. The map is computed every
    `step` pixels and interpolated in between (exact inside each triangle: the map is affine
    there; within a pixel or two of a triangle's edge it is a blend of its two neighbours').
    """
    offset = np.array([x0, y0])
    d = dst[triangles] - offset  # (m, 3, 2)
    area = (d[:, 1, 0] - d[:, 0, 0]) * (d[:, 2, 1] - d[:, 0, 1]) - (d[:, 2, 0] - d[:, 0, 0]) * (d[:, 1, 1] - d[:, 0, 1])
    keep = np.abs(area) >= 1e-3
    # per triangle, the affine map taking its dst corners to its src corners: [x y 1] @ M = src
    corners = np.concatenate([d[keep], np.ones((int(keep.sum()), 3, 1))], axis=2)
    affines = np.zeros((len(triangles), 3, 2), np.float32)
    affines[keep] = np.linalg.solve(corners, src[triangles[keep]] - offset)
    # the coarse grid: its point (i, j) sits at the centre of the step x step block it stands for,
    # where cv2.resize puts it when it scales the grid back up by `step`; one more point on each
    # side, so that the region's edges are interpolated, not clamped
    pad = 1 if step > 1 else 0
    ws, hs = -(-w // step) + 2 * pad, -(-h // step) + 2 * pad
    first = (step - 1) / 2.0 - pad * step  # where grid point 0 sits
    label = np.full((hs, ws), -1, np.int32)
    fixed_point = np.round((d - first) / step * 16).astype(np.int32)
    for k in np.flatnonzero(keep):
        cv2.fillConvexPoly(label, fixed_point[k], int(k), lineType=cv2.LINE_8, shift=4)
    yy, xx = np.mgrid[0:hs, 0:ws].astype(np.float32) * step + first
    inside = label >= 0
    a = affines[label[inside]]
    out = np.stack([xx, yy], axis=-1)
    px, py = xx[inside], yy[inside]
    out[inside, 0] = a[:, 0, 0] * px + a[:, 1, 0] * py + a[:, 2, 0]
    out[inside, 1] = a[:, 0, 1] * px + a[:, 1, 1] * py + a[:, 2, 1]
    if step > 1:
        out = cv2.resize(out, (ws * step, hs * step), interpolation=cv2.INTER_LINEAR)[step:step + h, step:step + w]
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
        self.exemplar = exemplar  # None: no open mouth was seen, the interior is painted
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
        mapping = _piecewise_affine_map(mesh_src, mesh_dst, triangles, x0, y0, x1 - x0, y1 - y0, map_step(iod))
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
        h, w = roi.shape[:2]
        ring = self._lip_ring(roi.shape, inner)
        if self.exemplar is None:
            if ring.sum() < 10:
                return roi
            cavity = painted_interior(roi.shape, inner, roi[ring].mean(0), inter_ocular(dst))
        else:
            ex = self.exemplar
            matrix, _ = cv2.estimateAffine2D(ex.inner.astype(np.float32), inner, method=cv2.LMEDS)
            if matrix is None:
                return roi
            cavity = cv2.warpAffine(ex.image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            cavity = self._match_colour(cavity, roi, ring)
        mask = np.zeros((h, w), np.float32)
        cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1.0)
        mask = cv2.GaussianBlur(mask, (0, 0), 1.0) * amount
        return (roi * (1 - mask[..., None]) + cavity * mask[..., None]).astype(np.uint8)

    @staticmethod
    def _lip_ring(shape, inner: np.ndarray) -> np.ndarray:
        """bool (h, w): the band of lips around the inner lip (8, 2)."""
        ring = np.zeros(shape[:2], np.uint8)
        centre = inner.mean(0)
        cv2.fillPoly(ring, [np.round(centre + (inner - centre) * 1.6).astype(np.int32)], 1)
        cv2.fillPoly(ring, [np.round(inner).astype(np.int32)], 0)
        return ring.astype(bool)

    @staticmethod
    def _match_colour(cavity: np.ndarray, roi: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """Scales the warped exemplar's colours so that its lips (the band `sel`) match this frame's."""
        if sel.sum() < 10:
            return cavity
        gain = (roi[sel].mean(0) + 1.0) / (cavity[sel].mean(0) + 1.0)
        return np.clip(cavity * np.clip(gain, 0.6, 1.6), 0, 255).astype(np.uint8)
