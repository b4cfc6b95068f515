"""The exemplar renderer: every output frame gets the person's own mouth in the wanted shape.

The input video has shown this person's mouth in many shapes; the mouth bank collected while
tracking (`lipsync.face.exemplar.MouthBank`) keeps pose-free patches of that lower face. For
each output frame the renderer picks the sample whose mouth (and head pose) best matches the
wanted landmarks, choosing smoothly over time (Viterbi over the closest candidates with a
shape cost and a cost for every switch), then:

1. bends the frame's own lower face to the wanted landmarks (the jaw line and the chin's
   outline move, nothing beyond the lower face does);
2. brings the sample's lips, teeth, tongue and the skin around them onto it, warped exactly
   onto the wanted landmarks, its light matched to the frame's around the mouth, blended
   with a soft mask inside the jaw line;
3. paints a mouth interior only where the lips open wider than the sample's own.

This is the recipe of Video Rewrite (Bregler et al., 1997): the mouth is real pixels of this
person, so teeth and lips keep their look for every shape. Where no sample is close (a head
pose the input showed too briefly) the frame's own lower face is bent to the wanted shape
instead (the mesh renderer), a candidate like the samples with a fixed extra cost. With a
single frame (a photo) the bank holds that frame and the result is the mesh renderer's.
"""
from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ..face.exemplar import MouthBank, MouthExemplar, canonical_matrix, features
from ..face.landmarks import JAW, OUTER_LIP, inter_ocular, mouth_opening, to_canonical
from .mesh import MeshRenderer, _piecewise_affine_map, blend, disk, lower_face_mask, map_step

CANDIDATES = 12  # closest samples considered per frame
SWITCH_COST = 4e-4  # cost of changing sample between frames, in the units of the shape cost (squared inter-ocular)
OPENING_WEIGHT = 4.0  # extra weight of the inner-lip opening in the shape cost
POSE_WEIGHT = 1.0  # weight of the nose (head turn) in the shape cost
PASTE_INSET = 0.05  # inter-ocular units: the sample stops this far inside the jaw line (the outline is the frame's)
PASTE_FEATHER = 0.04  # inter-ocular units: softness of the sample's edge
LIGHT_SIGMA = 0.15  # inter-ocular units: the scale over which the sample's light is matched to the frame's
# Cost of drawing a frame with its own lower face bent to the wanted shape (the mesh renderer) instead of a
# sample: its pose is right by definition, but its own mouth shows through. Taken when no sample is close
# (a head pose the bank never saw): a sample 0.07 inter-ocular units from the wanted shape or pose costs as much.
OWN_FRAME_COST = 0.005
DRAW_THREADS = 2  # frames of a batch drawn at once
WARP_POINTS = np.concatenate([np.arange(48, 68), JAW[2:15], np.arange(30, 36)])  # the mesh the sample is warped on


def _shape_costs(wanted: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """(n, k) cost of showing each of k samples for each of n wanted shapes (features, (., 26, 2))."""
    mouth = ((wanted[:, None, :20] - bank[None, :, :20]) ** 2).sum(-1).mean(-1)
    gap = lambda f: (f[..., [19, 18, 17], 1] - f[..., [13, 14, 15], 1]).mean(-1)  # noqa: E731 inner-lip opening
    opening = (gap(wanted)[:, None] - gap(bank)[None, :]) ** 2
    pose = ((wanted[:, None, 20:] - bank[None, :, 20:]) ** 2).sum(-1).mean(-1)
    return mouth + OPENING_WEIGHT * opening + POSE_WEIGHT * pose


def choose(costs: np.ndarray, previous: Optional[int] = None, switch: float = SWITCH_COST) -> np.ndarray:
    """int (n,): the sample for each frame that minimises the summed shape costs (n, k) plus
    `switch` per change of sample (Viterbi over each frame's CANDIDATES cheapest samples);
    `previous`: the sample of the frame before the first (counts as a change when left)."""
    n, k = costs.shape
    m = min(CANDIDATES, k)
    cand = np.argsort(costs, axis=1)[:, :m]
    if previous is not None:  # keep the previous sample among the candidates
        cand[:, -1] = np.where((cand[:, :-1] == previous).any(1), cand[:, -1], previous)
    local = np.take_along_axis(costs, cand, 1)
    total = local[0] + (0.0 if previous is None else switch * (cand[0] != previous))
    back = np.zeros((n, m), np.int64)
    for j in range(1, n):
        step = total[:, None] + switch * (cand[j - 1][:, None] != cand[j][None, :])  # (from, to)
        back[j] = np.argmin(step, axis=0)
        total = step[back[j], np.arange(m)] + local[j]
    path = np.zeros(n, np.int64)
    path[-1] = int(np.argmin(total))
    for j in range(n - 1, 0, -1):
        path[j - 1] = back[j, path[j]]
    return cand[np.arange(n), path]


@functools.lru_cache(maxsize=1)
def _drawers() -> ThreadPoolExecutor:
    """The threads that draw the frames of a batch (one per core, at most DRAW_THREADS)."""
    return ThreadPoolExecutor(max(1, min(DRAW_THREADS, os.cpu_count() or 1)), thread_name_prefix="lipsync-draw")


class ExemplarRenderer(MeshRenderer):
    """Draws each wanted mouth with the closest sample of the person's own mouth bank."""

    def __init__(self, place: Callable[[np.ndarray, np.ndarray], np.ndarray], bank: MouthBank,
                 exemplar: Optional[MouthExemplar] = None, pads: Sequence[int] = (0, 0, 0, 0)):
        super().__init__(place, exemplar, pads)
        self.bank = bank
        self._usable = np.flatnonzero(bank.typical())  # samples without an occluder or a failed fit
        canonical = bank.canonical()[self._usable]
        self._features = np.stack([features(c) for c in canonical])
        self._openings = np.array([mouth_opening(c) for c in canonical])
        self._previous: Optional[int] = None  # the sample of the last frame rendered
        self.chosen: List[int] = []  # the sample of every frame rendered so far, -1: its own (for inspection)

    def render(self, frames: Sequence[np.ndarray], faces: Sequence[np.ndarray], mouths) -> List[np.ndarray]:
        wanted = [self.place(p, m) for p, m in zip(faces, mouths)]
        if not wanted:
            return []
        everything = np.arange(68)
        shapes = np.stack([features(to_canonical(d, everything)) for d in wanted])
        own = np.stack([features(to_canonical(p, everything)) for p in faces])
        own_cost = np.diagonal(_shape_costs(shapes, own)) + OWN_FRAME_COST  # each frame against its own mouth
        costs = np.concatenate([_shape_costs(shapes, self._features), own_cost[:, None]], axis=1)
        picks = choose(costs, self._previous)
        self._previous = int(picks[-1])
        own_index = len(self._usable)  # the last column: the frame's own lower face
        self.chosen.extend(-1 if k == own_index else int(self._usable[k]) for k in picks)

        def one(job) -> np.ndarray:
            f, p, d, k = job
            return self.warp(f, p, d) if k == own_index else self.draw(f, p, d, int(k))

        jobs = list(zip(frames, faces, wanted, picks))
        if len(jobs) == 1:
            return [one(jobs[0])]
        return list(_drawers().map(one, jobs))  # OpenCV and numpy let go of the GIL: two frames at once

    def draw(self, frame: np.ndarray, points: np.ndarray, dst: np.ndarray, choice: int) -> np.ndarray:
        """`frame` with its lower face moved to `dst` (68, 2) and the usable sample `choice` pasted on it."""
        sample = int(self._usable[choice])
        bent = self.bend(frame, points, dst)
        if bent is None:
            return frame
        out, (x0, y0, x1, y1) = bent
        roi = out[y0:y1, x0:x1]
        iod = inter_ocular(points)
        local = dst - [x0, y0]
        patch, src = self.bank.patches[sample], self.bank.points[sample]
        shrink = self.bank.scale / iod  # patch pixels per frame pixel
        if shrink > 1.5:  # a small face: drawn from the finer patch, filtered first so that it does not alias
            patch = cv2.GaussianBlur(patch, (0, 0), 0.4 * shrink)
        # the sample's mesh onto the wanted landmarks, and its patch's frame (corners) onto this pose
        matrix = canonical_matrix(points, self.bank.scale)
        pw, ph = self.bank.size
        corners = np.array([[0, 0], [pw / 2, 0], [pw, 0], [pw, ph / 2], [pw, ph], [pw / 2, ph], [0, ph], [0, ph / 2]],
                           np.float64)
        to_frame = cv2.invertAffineTransform(matrix)
        mesh_src = np.concatenate([src[WARP_POINTS], corners])
        mesh_dst = np.concatenate([local[WARP_POINTS], corners @ to_frame[:, :2].T + to_frame[:, 2] - [x0, y0]])
        triangles = Delaunay(mesh_dst).simplices
        # for each pixel of the region, where to read the patch (the region's corners lie in the mesh)
        mapping = _piecewise_affine_map(mesh_src, mesh_dst + [x0, y0], triangles, x0, y0, x1 - x0, y1 - y0,
                                        map_step(iod))
        drawn = cv2.remap(patch, mapping[..., 0], mapping[..., 1], cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        inside = lower_face_mask(local, roi.shape, 0.0)
        inside = cv2.erode((inside > 0.5).astype(np.uint8), disk(max(1, int(round(PASTE_INSET * iod)))))
        weight = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), max(0.5, PASTE_FEATHER * iod))
        drawn = self._match_light(drawn, roi, local, inside, iod)
        roi = blend(roi, drawn, weight)
        out[y0:y1, x0:x1] = self._fill_mouth(roi, self._openings[choice], dst, x0, y0)
        return out

    @staticmethod
    def _match_light(drawn: np.ndarray, roi: np.ndarray, local: np.ndarray, inside: np.ndarray,
                     iod: float) -> np.ndarray:
        """The sample with its slowly varying light replaced by the frame's, measured on the skin
        around the lips (normalised convolution: the lips themselves do not count)."""
        skin = inside.astype(np.float32)
        lips = np.zeros(skin.shape, np.uint8)
        cv2.fillPoly(lips, [np.round(local[OUTER_LIP]).astype(np.int32)], 1)
        lips = cv2.dilate(lips, disk(max(1, int(round(0.05 * iod)))))
        skin[lips > 0] = 0.0
        sigma = max(1.0, LIGHT_SIGMA * iod)
        # the light varies slowly: measure it at a quarter of the blur's scale
        factor = max(1, int(sigma // 4))
        h, w = skin.shape
        small = (max(1, w // factor), max(1, h // factor))
        coarse = lambda a: cv2.resize(a, small, interpolation=cv2.INTER_AREA)  # noqa: E731
        weight = coarse(skin)
        norm = cv2.GaussianBlur(weight, (0, 0), sigma / factor)[..., None] + 1e-3
        difference = coarse((roi.astype(np.float32) - drawn) * skin[..., None])
        offset = cv2.GaussianBlur(difference, (0, 0), sigma / factor) / norm
        return np.clip(drawn + cv2.resize(offset, (w, h), interpolation=cv2.INTER_LINEAR), 0, 255)
