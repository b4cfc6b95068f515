"""Face detectors, chosen by name, and dlib's 68-point landmark fit inside a box.

Backends:
- ``hog`` (default): dlib's HOG detector on a downscaled frame (a few ms a frame);
- ``cnn``: dlib's MMOD CNN detector (slower, finds turned and small faces);
- ``face_alignment``: the face-alignment package's FAN, when it and its weights are present.
Landmarks come from dlib's 68-point predictor shipped in face-recognition-models, so the
default path needs no download. Boxes are (left, top, right, bottom) in pixels everywhere.
"""
from __future__ import annotations

import glob
import importlib.util
import os
from typing import List, Optional, Tuple

import cv2
import numpy as np

from ..errors import MissingBackendError

Box = Tuple[int, int, int, int]  # left, top, right, bottom in pixels
DETECTORS = ("hog", "cnn", "face_alignment")


def models_dir() -> str:
    """Folder of the dlib model files shipped by face-recognition-models."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingBackendError("face-recognition-models is not installed (pip install face-recognition-models)")
    return os.path.join(spec.submodule_search_locations[0], "models")


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
            raise MissingBackendError("the face_alignment detector needs the face-alignment package "
                                      "(pip install face-alignment torch==2.13.0)")
        folder = _torch_hub_checkpoints()
        missing = [name for name in ("s3fd", "2DFAN4") if not glob.glob(os.path.join(folder, name + "*"))]
        if missing:
            raise MissingBackendError(f"the face_alignment detector needs its weights in {folder} "
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


