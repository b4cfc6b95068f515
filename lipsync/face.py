"""Face detection, 68-point landmarks and tracking through a video.

Backends, chosen by name:
- ``hog`` (default): dlib's HOG detector on a downscaled frame (a few ms a frame);
- ``cnn``: dlib's MMOD CNN detector (slower, finds turned and small faces);
- ``face_alignment``: the face-alignment package's FAN, when it and its weights are present.
Landmarks come from dlib's 68-point predictor shipped in face-recognition-models, so the
default path needs no download.

A track is one (68, 2) float32 array per frame in pixel coordinates, NaN where the frame
has no face. Tracks are small and cached per input (content hash + settings).
"""
from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import importlib.util
import json
import logging
import os
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .errors import MissingBackendError, NoFaceError

log = logging.getLogger(__name__)

Box = Tuple[int, int, int, int]  # left, top, right, bottom in pixels
DETECTORS = ("hog", "cnn", "face_alignment")
TRACK_VERSION = 1

# 68-point landmark groups (iBUG 300-W numbering).
JAW = np.arange(0, 17)
NOSE = np.arange(27, 36)
LEFT_EYE = np.arange(36, 42)
RIGHT_EYE = np.arange(42, 48)
MOUTH = np.arange(48, 68)
OUTER_LIP = np.arange(48, 60)
INNER_LIP = np.arange(60, 68)
INNER_LIP_GAPS = np.array([[61, 67], [62, 66], [63, 65]])  # (upper, lower) pairs whose gaps make the opening
STABLE = np.array([27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45])  # nose and eye corners: move with the head only


def models_dir() -> str:
    """Folder of the dlib model files shipped by face-recognition-models."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingBackendError("face-recognition-models is not installed (pip install face-recognition-models)")
    return os.path.join(spec.submodule_search_locations[0], "models")


def inter_ocular(points: np.ndarray) -> float:
    """Distance between the eye centres of one (68, 2) landmark set."""
    return float(np.linalg.norm(points[LEFT_EYE].mean(0) - points[RIGHT_EYE].mean(0)))


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip opening (mean of the three vertical gaps) in inter-ocular units."""
    gaps = np.linalg.norm(points[INNER_LIP_GAPS[:, 0]] - points[INNER_LIP_GAPS[:, 1]], axis=1)
    return float(gaps.mean() / max(1e-6, inter_ocular(points)))


def _downscale(gray: np.ndarray, max_side: int) -> Tuple[np.ndarray, float]:
    scale = min(1.0, max_side / max(gray.shape[:2]))
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return gray, scale


class Detector:
    """Finds face boxes in a grayscale frame; `landmarks` fits 68 points inside a box."""

    name = "base"

    def __init__(self):
        import dlib

        self._dlib = dlib
        path = os.path.join(models_dir(), "shape_predictor_68_face_landmarks.dat")
        self._predictor = dlib.shape_predictor(path)

    def detect(self, gray: np.ndarray, face_size: Optional[float] = None) -> List[Box]:
        """Face boxes in `gray`. `face_size`: the expected face width in pixels, when known
        from tracking, lets a detector work on a smaller image."""
        raise NotImplementedError

    def landmarks(self, gray: np.ndarray, box: Box) -> np.ndarray:
        shape = self._predictor(gray, self._dlib.rectangle(*[int(v) for v in box]))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)


class DlibDetector(Detector):
    """A dlib detector run on a downscaled frame: no larger than `max_side`, and smaller still
    when tracking says the face is big (the detector needs only about `min_face` pixels)."""

    max_side = 480
    min_face = 80  # dlib's HOG and MMOD windows: smaller faces are missed

    def _rects(self, small: np.ndarray) -> list:
        raise NotImplementedError

    def detect(self, gray: np.ndarray, face_size: Optional[float] = None) -> List[Box]:
        side = self.max_side
        if face_size:
            side = int(min(side, max(gray.shape[:2]) * 1.3 * self.min_face / face_size))
        small, scale = _downscale(gray, side)
        return [(int(r.left() / scale), int(r.top() / scale), int(r.right() / scale), int(r.bottom() / scale))
                for r in self._rects(small)]


class HogDetector(DlibDetector):
    name = "hog"

    def __init__(self):
        super().__init__()
        self._detector = self._dlib.get_frontal_face_detector()

    def _rects(self, small: np.ndarray) -> list:
        rects = self._detector(small, 0)
        return rects if len(rects) else self._detector(small, 1)


class CnnDetector(DlibDetector):
    name = "cnn"

    def __init__(self):
        super().__init__()
        self._detector = self._dlib.cnn_face_detection_model_v1(os.path.join(models_dir(), "mmod_human_face_detector.dat"))

    def _rects(self, small: np.ndarray) -> list:
        return [d.rect for d in self._detector(small, 0)]


def _torch_hub_checkpoints() -> str:
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
    return os.path.join(home, "hub", "checkpoints")


class FaceAlignmentDetector(Detector):
    """face-alignment's S3FD detector and FAN landmarks; never downloads (checks first)."""

    name = "face_alignment"

    def __init__(self):
        if importlib.util.find_spec("face_alignment") is None:
            raise MissingBackendError("--detector face_alignment needs the face-alignment package "
                                      "(pip install face-alignment torch==2.13.0)")
        folder = _torch_hub_checkpoints()
        missing = [name for name in ("s3fd", "2DFAN4") if not glob.glob(os.path.join(folder, name + "*"))]
        if missing:
            raise MissingBackendError(f"--detector face_alignment needs its weights in {folder} "
                                      f"(missing: {', '.join(m + '-*' for m in missing)}); this tool never downloads "
                                      "them: copy them there from a machine where face-alignment has run once")
        import face_alignment

        kind = getattr(face_alignment.LandmarksType, "TWO_D", None) or face_alignment.LandmarksType._2D
        self._fa = face_alignment.FaceAlignment(kind, device="cpu", flip_input=False)

    def detect(self, gray: np.ndarray, face_size: Optional[float] = None) -> List[Box]:
        rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
        boxes = self._fa.face_detector.detect_from_image(rgb[..., ::-1].copy())
        return [tuple(int(v) for v in b[:4]) for b in boxes]

    def landmarks(self, gray: np.ndarray, box: Box) -> np.ndarray:
        rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
        pts = self._fa.get_landmarks_from_image(rgb, detected_faces=[list(box)])
        return np.asarray(pts[0][:, :2], np.float32)


def make_detector(name: str) -> Detector:
    """The face detector backend called `name` (one of DETECTORS)."""
    backends = {"hog": HogDetector, "cnn": CnnDetector, "face_alignment": FaceAlignmentDetector}
    if name not in backends:
        raise MissingBackendError(f"unknown face detector {name!r} (choose from {', '.join(DETECTORS)})")
    return backends[name]()


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclasses.dataclass
class TrackSettings:
    """Everything that changes a face track (part of its cache key)."""

    detector: str = "hog"
    face_index: Optional[int] = None  # None: the largest face; N: the N-th face from the left
    box: Optional[Tuple[int, int, int, int]] = None  # fixed top, bottom, left, right (Wav2Lip's order)
    detect_every: int = 4


class FaceTracker:
    """Follows one face through consecutive frames.

    Detects on the first frame, every `detect_every` frames, and whenever the face in the
    box no longer looks like the one last detected; in between, the last detection box is
    moved with the landmarks. A missed detection keeps the track only while the box still
    holds the same face (a turned head), otherwise the frame has no face.
    """

    min_similarity = 0.6  # normalised correlation of the box's appearance with the last detection

    def __init__(self, settings: TrackSettings, detector: Optional[Detector] = None):
        self.settings = settings
        self.detector = detector or make_detector(settings.detector)
        self._box: Optional[Box] = None  # last detector box, moved along with the face
        self._anchor: Optional[np.ndarray] = None  # landmark centre when _box was set
        self._face: Optional[np.ndarray] = None  # normalised appearance of the face at the last detection
        self._since_detect = 0

    def _choose(self, boxes: Sequence[Box]) -> Optional[Box]:
        if not boxes:
            return None
        if self._box is not None:
            best = max(boxes, key=lambda b: _iou(b, self._box))
            return best if _iou(best, self._box) > 0.2 else None
        if self.settings.face_index is None:
            return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        ordered = sorted(boxes, key=lambda b: b[0])
        return ordered[self.settings.face_index] if self.settings.face_index < len(ordered) else None

    def _template(self, gray: np.ndarray, box: Box) -> Optional[np.ndarray]:
        left, top, right, bottom = box
        h, w = gray.shape[:2]
        crop = gray[max(0, top):max(0, min(h, bottom)), max(0, left):max(0, min(w, right))]
        if crop.shape[0] < 8 or crop.shape[1] < 8:
            return None
        patch = cv2.resize(crop, (24, 24), interpolation=cv2.INTER_AREA).astype(np.float32)
        patch -= patch.mean()
        return patch / (np.linalg.norm(patch) + 1e-6)

    def _still_there(self, gray: np.ndarray) -> bool:
        """Does the tracked box still hold the face seen at the last detection?"""
        now = self._template(gray, self._box)
        return now is not None and self._face is not None and float((now * self._face).sum()) > self.min_similarity

    def __call__(self, frame: np.ndarray) -> Optional[np.ndarray]:
        """Landmarks (68, 2) float32 of the tracked face in `frame` (BGR), or None."""
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        if self.settings.box is not None:
            top, bottom, left, right = self.settings.box
            return self.detector.landmarks(gray, (left, top, right, bottom))
        due = self._box is None or self._since_detect >= self.settings.detect_every
        still = None if due else self._still_there(gray)
        if still is False:
            due = True  # the face changed or left between detections
        if due:
            size = None if self._box is None else float(self._box[2] - self._box[0])
            box = self._choose(self.detector.detect(gray, size))
            self._since_detect = 0
            if box is not None:
                self._box, self._anchor = box, None
                self._face = self._template(gray, box)
            elif self._box is None or not (self._still_there(gray) if still is None else still):
                self._box = None  # lost: search the whole frame again next time
                return None
        self._since_detect += 1
        points = self.detector.landmarks(gray, self._box)
        centre = points[STABLE].mean(0)
        if self._anchor is None:
            self._anchor = centre
        shift = centre - self._anchor
        left, top, right, bottom = self._box
        size = right - left
        if np.abs(shift).max() > 0.08 * size:  # the face moved: move the box with it
            self._box = (int(left + shift[0]), int(top + shift[1]), int(right + shift[0]), int(bottom + shift[1]))
            self._anchor = centre
        spread = points.max(0) - points.min(0)
        if spread.min() < 0.25 * size or spread.max() > 2.0 * size:
            self._since_detect = self.settings.detect_every  # the fit looks wrong: detect next frame
        return points


def smooth_track(track: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Zero-phase (no lag) Gaussian smoothing of landmarks over time.

    track: (n, 68, 2) float32 with NaN rows for frames without a face; each run of
    consecutive faces is smoothed on its own. Returns a new array of the same shape.
    """
    out = track.copy()
    if sigma <= 0 or len(track) < 3:
        return out
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    valid = ~np.isnan(track[:, 0, 0])
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return out
    breaks = np.flatnonzero(np.diff(idx) > 1)
    for run in np.split(idx, breaks + 1):
        seg = track[run].reshape(len(run), -1).astype(np.float64)
        padded = np.pad(seg, ((radius, radius), (0, 0)), mode="edge")
        num = np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(seg.shape[1])], axis=1)
        out[run] = (num / kernel.sum()).reshape(len(run), 68, 2).astype(np.float32)
    return out


def file_digest(path: str) -> str:
    """SHA-1 of a file's content (read once per process while the file is unchanged)."""
    st = os.stat(path)
    return _digest(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int, chunk: int = 1 << 20) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> str:
    """Where face tracks are cached: $LIPSYNC_CACHE_DIR, else ~/.cache/lipsync."""
    base = os.environ.get("LIPSYNC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lipsync")
    return os.path.join(base, "tracks")


def track_cache_path(video_path: str, settings: TrackSettings, fps: float) -> str:
    key = json.dumps({"v": TRACK_VERSION, "file": file_digest(video_path), "fps": round(fps, 4),
                      **dataclasses.asdict(settings)}, sort_keys=True)
    return os.path.join(cache_dir(), hashlib.sha1(key.encode()).hexdigest() + ".npz")


def load_cached_track(path: str) -> Optional[dict]:
    """The arrays of a cached track, or None when the file is missing or unreadable."""
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except (OSError, KeyError, ValueError):
        return None


def save_cached_track(path: str, landmarks: np.ndarray, **extra: np.ndarray) -> None:
    """Writes atomically; a cache that cannot be written is only a warning."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + f".{os.getpid()}.tmp.npz"
        np.savez_compressed(tmp, landmarks=landmarks.astype(np.float32), **extra)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not cache the face track in %s: %s", path, exc)


def require_faces(track: np.ndarray, source: str) -> None:
    """Raise NoFaceError when no frame of `track` has a face."""
    if len(track) == 0 or np.isnan(track[:, 0, 0]).all():
        raise NoFaceError(f"{source}: no face found in any frame")
