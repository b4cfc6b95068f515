"""The `warp` generator: a deterministic, training-free renderer driven by the sound.

1. Sound to mouth opening: the log-mel level of the speech band around each video frame,
   normalised between the clip's pauses and its loudest syllables, mapped onto the
   person's own range of mouth openings.
2. Opening to pixels: the lips and jaw landmarks are moved to the wanted opening and the
   lower face is bent to follow them with a smooth radial-basis displacement field. The
   opened mouth is filled with the person's own mouth interior (teeth included) taken
   from the frame of the input where the mouth is most open, or, for a closed-mouth photo,
   a dark cavity with a hint of upper teeth.

Only pixels inside a feathered lower-face window change; everything else is copied.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import cv2
import numpy as np
from scipy.spatial import Delaunay

from . import audio as audio_lib
from .face import INNER_LIP, INNER_LIP_GAPS, JAW, LEFT_EYE, MOUTH, RIGHT_EYE, STABLE, inter_ocular, mouth_opening

# Chosen on the ten in-sync GRID clips (mean correlation with the real mouth opening 0.62;
# a 300-2500 Hz band, a 20 ms lead or a dead zone all did worse).
SPEECH_BAND_HZ = (55.0, 7600.0)
ENVELOPE_HALF_WIDTH_S = 0.04
ENVELOPE_LEAD_S = 0.0
FLOOR_PERCENTILE = 15  # below this level counts as a pause
PEAK_PERCENTILE = 97
DEFAULT_SPAN = 0.22  # opening range (inter-ocular units) assumed for a still photo
MIN_SPAN = 0.12

# How far each landmark moves, as a fraction of the change in inner-lip opening.
# Negative: up (upper lip), positive: down (lower lip, jaw).
_MOVE = np.zeros(68, np.float32)
_MOVE[[49, 50, 51, 52, 53]] = -0.12
_MOVE[[61, 62, 63]] = -0.15
_MOVE[[48, 54]] = 0.30
_MOVE[[60, 64]] = 0.35
_MOVE[[55, 59]] = 0.60
_MOVE[[56, 58]] = 0.78
_MOVE[57] = 0.85
_MOVE[[65, 66, 67]] = 0.85
_MOVE[JAW] = [0, 0, 0, 0.12, 0.30, 0.50, 0.70, 0.82, 0.85, 0.82, 0.70, 0.50, 0.30, 0.12, 0, 0, 0]
_MOVING = np.flatnonzero(_MOVE != 0)
_FIXED = np.concatenate([STABLE, LEFT_EYE, RIGHT_EYE, [0, 1, 2, 14, 15, 16]])


def mouth_drive(wav: np.ndarray, fps: float, n_frames: int, mel: Optional[np.ndarray] = None) -> np.ndarray:
    """How open the mouth should be at each video frame, from the sound alone.

    wav: float32 mono at 16 kHz. Returns float32 (n_frames,) in [0, 1]: 0 for silence
    and closed consonants, 1 for the loudest open vowels of the clip.
    """
    if mel is None:
        mel = audio_lib.melspectrogram(wav)
    band = audio_lib.mel_band(*SPEECH_BAND_HZ)
    level = audio_lib.frame_envelope(mel, fps, n_frames, band, ENVELOPE_HALF_WIDTH_S, ENVELOPE_LEAD_S)
    floor = max(np.percentile(level, FLOOR_PERCENTILE), -3.2)  # near-digital silence sits at -4
    peak = np.percentile(level, PEAK_PERCENTILE)
    if peak - floor < 0.4:  # no speech-like dynamics: keep the mouth at rest
        return np.zeros(n_frames, np.float32)
    drive = np.clip((level - floor) / (peak - floor), 0.0, 1.0)
    return _gaussian_1d(drive, sigma=0.6).astype(np.float32)


def _gaussian_1d(x: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    return np.convolve(np.pad(x, radius, mode="edge"), kernel, mode="valid")


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


def face_down(points: np.ndarray) -> np.ndarray:
    """Unit vector pointing from the eyes towards the chin, perpendicular to the eye line."""
    eye = points[RIGHT_EYE].mean(0) - points[LEFT_EYE].mean(0)
    return (np.array([-eye[1], eye[0]]) / max(1e-6, float(np.linalg.norm(eye)))).astype(np.float32)


def target_points(points: np.ndarray, opening: float) -> np.ndarray:
    """The landmarks moved so that the inner-lip opening becomes `opening` (inter-ocular units).

    The lower inner lip never crosses above the upper one (a closing mouth stops at closed).
    """
    down = face_down(points)
    delta = (opening - mouth_opening(points)) * inter_ocular(points)
    return uncross_lips(points + np.outer(_MOVE * delta, down).astype(np.float32), down)


def uncross_lips(points: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Moves any lower inner-lip point that crossed above its upper partner back to closed."""
    out = points.astype(np.float32).copy()
    for up, low in INNER_LIP_GAPS:
        gap = float((out[low] - out[up]) @ down)
        if gap < 0:
            out[low] -= gap * down
    return out


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


class WarpRenderer:
    """Moves the mouth of one frame to a wanted opening (see the module docstring)."""

    def __init__(self, exemplar: Optional[MouthExemplar] = None, pads=(0, 0, 0, 0)):
        self.exemplar = exemplar if exemplar is not None else synthetic_exemplar()
        self.pads = pads  # extra margin (top, bottom, left, right) in pixels around the changed region

    def render(self, frame: np.ndarray, points: np.ndarray, opening: float) -> np.ndarray:
        """frame: (H, W, 3) uint8 BGR; points: its (68, 2) landmarks. Returns a new frame."""
        return self.render_points(frame, points, target_points(points, opening))

    def render_points(self, frame: np.ndarray, points: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Moves the lower face so that landmarks `points` go to `dst` (both (68, 2)); a new frame."""
        h, w = frame.shape[:2]
        iod = inter_ocular(points)
        if iod < 8:  # too small a face to change anything useful
            return frame
        opening = mouth_opening(dst)
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
        y0 = int(max(0, np.floor(points[29, 1] - top)))
        y1 = int(min(h, np.ceil(region[:, 1].max() + bottom + 1)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return frame
        lower = np.flatnonzero(mesh_src[:, 1] >= points[29, 1] - 1e-3)  # only the part of the face that moves
        triangles = lower[Delaunay(mesh_src[lower]).simplices]
        mapping = _piecewise_affine_map(mesh_src, mesh_dst, triangles, x0, y0, x1 - x0, y1 - y0)
        # where the mesh does not move, the map is the identity and remap copies pixels exactly
        roi = cv2.remap(frame, mapping[..., 0], mapping[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out = frame.copy()
        out[y0:y1, x0:x1] = self._fill_mouth(roi, points, dst, opening, x0, y0)
        return out

    def _fill_mouth(self, roi: np.ndarray, points: np.ndarray, dst: np.ndarray, opening: float,
                    x0: int, y0: int) -> np.ndarray:
        """Paints the person's mouth interior where the warp opened the lips further."""
        amount = float(np.clip((opening - mouth_opening(points)) / 0.05, 0.0, 1.0))
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
