"""Samples of the person's own mouth, collected while the face is tracked: the most open
mouths (the mesh renderer paints one into mouths it opens wider than any it has), and the
mouth bank (the exemplar renderer brings, for every wanted shape, the person's own lower face
in the closest shape)."""
from __future__ import annotations

import dataclasses
from typing import Optional

import cv2
import numpy as np

from .landmarks import INNER_LIP, MOUTH, frame_axes, inter_ocular, mouth_opening


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


# The mouth bank: the person's own lower face in many mouth shapes, for the exemplar renderer.
# Each sample is the lower face resampled into a pose-free patch (the canonical frame of
# `lipsync.face.landmarks`: eye line horizontal, one unit = the inter-ocular distance), so
# that any sample can be brought onto any frame of the same person.
PATCH_BOX = (-0.85, 0.45, 0.85, 2.05)  # canonical x0, y0, x1, y1 of the patch: nose tip to below the chin
PATCH_SCALE = (120, 200)  # patch pixels per inter-ocular unit: the face's own size, within these bounds
BANK_SIZE = 240  # samples kept at most: 28 MB of patches at the smallest scale, 78 MB at the largest
BANK_PER_CELL = 3  # samples kept per cell of the shape grid
BANK_CELL = (0.03, 0.05, 0.05)  # grid steps: inner-lip opening, mouth width, nose offset (yaw), in inter-ocular units
BANK_JPEG_QUALITY = 95  # how patches are stored in the face-track cache
FEATURE_POINTS = np.concatenate([MOUTH, np.arange(30, 36)])  # what a sample's shape and pose are compared on


def canonical_matrix(points: np.ndarray, scale: float) -> np.ndarray:
    """(2, 3) affine taking pixels of a frame with landmarks `points` (68, 2) to the pixels of
    a patch at `scale` patch pixels per inter-ocular unit."""
    origin, rot, iod = frame_axes(points)
    linear = rot * (scale / iod)
    shift = -linear @ origin - np.array(PATCH_BOX[:2]) * scale
    return np.concatenate([linear, shift[:, None]], axis=1)


def vertical_opening(canonical: np.ndarray) -> float:
    """Inner-lip opening of a canonical landmark set (68, 2) along the face's down axis
    (negative when the lower lip crossed above the upper one)."""
    return float(np.mean(canonical[[67, 66, 65], 1] - canonical[[61, 62, 63], 1]))


def plausible(canonical: np.ndarray) -> bool:
    """Is a canonical landmark set (68, 2) a believable face (not a failed fit)?"""
    width = canonical[54, 0] - canonical[48, 0]
    opening = vertical_opening(canonical)
    centre = canonical[MOUTH].mean(0)
    return 0.45 < width < 1.2 and -0.02 < opening < 0.55 and abs(centre[0]) < 0.3 and 0.7 < centre[1] < 1.5


def mouth_sharpness(patch: np.ndarray, points: np.ndarray) -> float:
    """Variance of the Laplacian over the mouth of a patch whose landmarks (68, 2) are `points`."""
    (x0, y0), (x1, y1) = np.floor(points[MOUTH].min(0)).astype(int), np.ceil(points[MOUTH].max(0)).astype(int)
    h, w = patch.shape[:2]
    gray = cv2.cvtColor(patch[max(0, y0):min(h, y1 + 1), max(0, x0):min(w, x1 + 1)], cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var()) if gray.size else 0.0


def features(canonical: np.ndarray) -> np.ndarray:
    """float32 (26, 2): the mouth and the nose's lower points of a canonical landmark set, the
    mouth relative to its upper lip (what the renderer matches a wanted shape against)."""
    out = canonical[FEATURE_POINTS].astype(np.float32).copy()
    out[:20] -= canonical[[50, 51, 52]].mean(0)
    return out


class MouthBank:
    """Samples of one person's lower face (patches) with their landmarks in patch pixels.

    Filled frame by frame while tracking (`offer`); what is kept does not grow with the video's
    length: the shape space (opening x width x yaw) is cut into cells and each cell keeps the
    sharpest few of the frames that fall into it, at most BANK_SIZE in all.
    """

    def __init__(self, scale: float = 0.0):
        self.scale = scale  # patch pixels per inter-ocular unit; set by the first face when 0
        self.patches: list = []  # uint8 (h, w, 3) BGR
        self.points: list = []  # float32 (68, 2) in patch pixels
        self.sharpness: list = []  # of each sample's mouth (variance of the Laplacian)
        self._cells: dict = {}  # cell -> sample indices

    def __len__(self) -> int:
        return len(self.patches)

    @property
    def size(self) -> tuple:
        """(width, height) of a patch."""
        x0, y0, x1, y1 = PATCH_BOX
        return int(round((x1 - x0) * self.scale)), int(round((y1 - y0) * self.scale))

    def offer(self, frame: np.ndarray, points: Optional[np.ndarray]) -> None:
        """Considers one tracked frame (BGR uint8) with its landmarks (68, 2) (None: no face)."""
        if points is None:
            return
        iod = inter_ocular(points)
        if iod < 16:
            return
        if not self.scale:
            self.scale = float(np.clip(iod, *PATCH_SCALE))
        matrix = canonical_matrix(points, self.scale)
        local = points @ matrix[:, :2].T + matrix[:, 2]
        canonical = local / self.scale + np.array(PATCH_BOX[:2])
        if not plausible(canonical):
            return
        opening = vertical_opening(canonical)
        cell = (int(opening // BANK_CELL[0]), int((canonical[54, 0] - canonical[48, 0]) // BANK_CELL[1]),
                int((canonical[30, 0] - canonical[[0, 16], 0].mean()) // BANK_CELL[2]))
        members = self._cells.setdefault(cell, [])
        if len(members) < BANK_PER_CELL and len(self.patches) < BANK_SIZE:
            slot = None
        elif members:  # a full cell keeps its sharpest frames (motion blur makes a poor mouth)
            slot = min(members, key=lambda k: self.sharpness[k])
        else:
            return
        patch = cv2.warpAffine(frame, matrix, self.size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        sharpness = mouth_sharpness(patch, local)
        if slot is None:
            members.append(len(self.patches))
            self.patches.append(patch)
            self.points.append(local.astype(np.float32))
            self.sharpness.append(sharpness)
        elif sharpness > self.sharpness[slot]:
            self.patches[slot], self.points[slot], self.sharpness[slot] = patch, local.astype(np.float32), sharpness

    def typical(self) -> np.ndarray:
        """bool (k,): the samples whose face around the mouth looks like the others'.

        A hand or hair in front of the chin, or a landmark fit that put the lips in the wrong
        place, changes the skin beside and above the lips; such samples differ from the
        bank's median there (after each sample's mean colour is removed: light changes) by
        far more than the rest.
        """
        k = len(self)
        if k < 8:
            return np.ones(k, bool)
        w, h = self.size
        small = (max(8, w // 4), max(8, h // 4))
        yy, xx = (np.mgrid[0:small[1], 0:small[0]] + 0.5) * (np.array([h, w]) / np.array(small[::-1]))[:, None, None]
        canon_x, canon_y = xx / self.scale + PATCH_BOX[0], yy / self.scale + PATCH_BOX[1]
        region = (canon_y > 0.6) & (canon_y < 1.45)  # cheeks and upper lip skin; the chin moves with the jaw
        samples, masks = [], []
        for patch, points in zip(self.patches, self.points):
            lips = np.zeros(small[::-1], np.uint8)
            outline = points[MOUTH[:12]] * (np.array(small) / np.array([w, h]))
            centre = outline.mean(0)
            cv2.fillPoly(lips, [np.round(centre + (outline - centre) * 1.25).astype(np.int32)], 1)
            keep = region & (lips == 0)
            image = cv2.resize(patch, small, interpolation=cv2.INTER_AREA).astype(np.float32)
            samples.append(image - image[keep].mean(0))
            masks.append(keep)
        samples, masks = np.stack(samples), np.stack(masks)
        median = np.median(samples, axis=0)
        score = np.array([np.abs(s - median)[m].mean() for s, m in zip(samples, masks)])
        centre, spread = np.median(score), np.median(np.abs(score - np.median(score))) + 1e-6
        return ~((score > centre + 4 * 1.4826 * spread) & (score > 6.0))

    def canonical(self) -> np.ndarray:
        """float32 (k, 68, 2): every sample's landmarks in the canonical frame."""
        return (np.asarray(self.points, np.float32).reshape(-1, 68, 2) / self.scale
                + np.array(PATCH_BOX[:2], np.float32))

    def to_arrays(self) -> dict:
        blobs = [cv2.imencode(".jpg", p, [cv2.IMWRITE_JPEG_QUALITY, BANK_JPEG_QUALITY])[1].ravel() for p in self.patches]
        return dict(bank_scale=np.float64(self.scale), bank_points=np.asarray(self.points, np.float32).reshape(-1, 68, 2),
                    bank_lengths=np.array([len(b) for b in blobs], np.int64),
                    bank_jpeg=np.concatenate(blobs) if blobs else np.zeros(0, np.uint8))

    @staticmethod
    def from_arrays(arrays: dict) -> "MouthBank":
        points, lengths, jpeg = arrays["bank_points"], arrays["bank_lengths"], arrays["bank_jpeg"]
        if points.ndim != 3 or points.shape[1:] != (68, 2) or lengths.shape != (len(points),) \
                or (lengths <= 0).any() or lengths.sum() != len(jpeg):
            raise ValueError("an inconsistent mouth bank")
        bank = MouthBank(float(arrays["bank_scale"]))
        ends = np.cumsum(lengths)
        for end, length, points in zip(ends, lengths, points):
            patch = cv2.imdecode(arrays["bank_jpeg"][end - length:end], cv2.IMREAD_COLOR)
            if patch is None or patch.shape[1::-1] != bank.size:
                raise ValueError("a damaged mouth bank patch")
            bank.patches.append(patch)
            bank.points.append(points)
            bank.sharpness.append(mouth_sharpness(patch, points))
        return bank
