"""Following one face through a video: landmarks and boxes for every frame, as a `FaceTrack`.

The tracker detects every few frames and follows the face in between; the track is small
(a few kB per second) and cached per input (content hash + settings), so a second run on
the same video skips detection.
"""
from __future__ import annotations

import dataclasses
import itertools
import functools
import logging
from typing import TYPE_CHECKING, Dict, Iterable, Optional, Sequence, Tuple

import cv2
import numpy as np

from .. import cache
from .. import smoothing
from ..errors import NoFaceError
from ..progress import Progress
from .detect import Box, Detector, make_detector
from .exemplar import ExemplarPicker, MouthBank, MouthExemplar
from .landmarks import N_POINTS, STABLE, openings

if TYPE_CHECKING:
    from ..io.media import MediaInfo

log = logging.getLogger(__name__)

TRACK_VERSION = 6  # part of the cache key: bump when a track's content changes
SMOOTH_SIGMA = 1.0  # frames: the temporal smoothing of landmarks before rendering


THOROUGH_MAX_SIDE = 640


@dataclasses.dataclass
class TrackSettings:
    """Everything that changes a face track (part of its cache key)."""

    detector: str = "hog"
    face_index: Optional[int] = None  # None: the largest face; N: the N-th face from the left
    box: Optional[Box] = None  # a fixed face box (left, top, right, bottom) instead of detection
    detect_every: int = 4
    thorough: bool = False  # detect on every frame at up to 640 px, with no size hint (evaluation, as the dub test)


@dataclasses.dataclass
class FaceTrack:
    """One face through a clip.

    landmarks: float32 (n, 68, 2) in pixels, NaN rows where the frame has no face;
    boxes: float32 (n, 4) face boxes (left, top, right, bottom), NaN rows likewise;
    fps: frames per second of the track; exemplar: the person's open mouth, when one was
    seen while tracking (the mesh renderer paints it into mouths it opens); bank: the
    person's lower face in many mouth shapes (the exemplar renderer's material);
    most_faces: the most faces the detector saw in one frame.
    """

    landmarks: np.ndarray
    boxes: np.ndarray
    fps: float
    exemplar: Optional[MouthExemplar] = None
    bank: Optional[MouthBank] = None
    most_faces: int = 0

    def __len__(self) -> int:
        return len(self.landmarks)

    @functools.cached_property
    def valid(self) -> np.ndarray:
        """bool (n,): frames with a face."""
        return ~np.isnan(self.landmarks[:, 0, 0])

    @functools.cached_property
    def openings(self) -> np.ndarray:
        """float64 (n,): inner-lip opening per frame in inter-ocular units, NaN without a face."""
        return openings(self.landmarks)

    def head(self, n: int) -> "FaceTrack":
        """The first `n` frames."""
        return dataclasses.replace(self, landmarks=self.landmarks[:n], boxes=self.boxes[:n])

    def smoothed(self, sigma: float = SMOOTH_SIGMA) -> "FaceTrack":
        """The track with its landmarks smoothed over time (zero phase; each run of frames with
        a face on its own)."""
        return dataclasses.replace(self, landmarks=smooth_landmarks(self.landmarks, sigma))

    def to_arrays(self) -> Dict[str, np.ndarray]:
        arrays = dict(landmarks=self.landmarks.astype(np.float32), boxes=self.boxes.astype(np.float32),
                      fps=np.float64(self.fps), most_faces=np.int32(self.most_faces))
        if self.exemplar is not None:
            arrays.update(exemplar_image=self.exemplar.image, exemplar_inner=self.exemplar.inner,
                          exemplar_opening=np.float32(self.exemplar.opening))
        if self.bank is not None and len(self.bank):
            arrays.update(self.bank.to_arrays())
        return arrays

    @staticmethod
    def from_arrays(arrays: Dict[str, np.ndarray]) -> "FaceTrack":
        """Raises KeyError or ValueError for arrays that are not a track."""
        landmarks, boxes, fps = arrays["landmarks"], arrays["boxes"], float(arrays["fps"])
        if landmarks.ndim != 3 or landmarks.shape[1:] != (N_POINTS, 2) or boxes.shape != (len(landmarks), 4):
            raise ValueError(f"track arrays of shapes {landmarks.shape} and {boxes.shape}")
        if not 0 < fps <= 1000:
            raise ValueError(f"a track at {fps} fps")
        exemplar = None
        if "exemplar_image" in arrays:
            exemplar = MouthExemplar(arrays["exemplar_image"], arrays["exemplar_inner"],
                                     float(arrays["exemplar_opening"]))
            if exemplar.image.ndim != 3 or exemplar.image.dtype != np.uint8 or exemplar.inner.shape[-1:] != (2,):
                raise ValueError("an inconsistent mouth exemplar")
        bank = MouthBank.from_arrays(arrays) if "bank_points" in arrays else None
        return FaceTrack(landmarks, boxes, fps, exemplar, bank, int(arrays.get("most_faces", 0)))


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


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
        if settings.thorough and hasattr(self.detector, "max_side"):
            self.detector.max_side = THOROUGH_MAX_SIDE
        self._box: Optional[Box] = None  # last detector box, moved along with the face
        self._anchor: Optional[np.ndarray] = None  # landmark centre when _box was set
        self._face: Optional[np.ndarray] = None  # normalised appearance of the face at the last detection
        self._since_detect = 0
        self.box: Optional[Box] = None  # the box of the face found in the last frame
        self.most_faces = 0  # the most faces found in one frame

    def _choose(self, boxes: Sequence[Box]) -> Optional[Box]:
        self.most_faces = max(self.most_faces, len(boxes))
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

    def _detect(self, gray: np.ndarray) -> list:
        """Face boxes: near the tracked face when there is one (a crop three boxes wide, which
        the detector scales to the face's size: a small face in a large frame is found at a
        size the detector can fit), else, or when none is there, in the whole frame."""
        if self._box is None or self.settings.thorough:
            return self.detector.detect(gray)
        left, top, right, bottom = self._box
        size = float(right - left)
        h, w = gray.shape[:2]
        x0, y0 = int(max(0, left - size)), int(max(0, top - size))
        x1, y1 = int(min(w, right + size)), int(min(h, bottom + size))
        crop = np.ascontiguousarray(gray[y0:y1, x0:x1])  # dlib reads the buffer as contiguous rows
        boxes = self.detector.detect(crop, size) if x1 - x0 > 16 and y1 - y0 > 16 else []
        if boxes:
            return [(b[0] + x0, b[1] + y0, b[2] + x0, b[3] + y0) for b in boxes]
        return self.detector.detect(gray, size)

    def __call__(self, frame: np.ndarray) -> Optional[np.ndarray]:
        """Landmarks (68, 2) float32 of the tracked face in `frame` (BGR), or None."""
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        if self.settings.box is not None:
            self.box = tuple(self.settings.box)
            return self.detector.landmarks(gray, self.box)
        due = self._box is None or self._since_detect >= self.settings.detect_every or self.settings.thorough
        still = None if due else self._still_there(gray)
        if still is False:
            due = True  # the face changed or left between detections
        if due:
            box = self._choose(self._detect(gray))
            self._since_detect = 0
            if box is not None:
                self._box, self._anchor = box, None
                self._face = self._template(gray, box)
            elif self._box is None or not (self._still_there(gray) if still is None else still):
                self._box = self.box = None  # lost: search the whole frame again next time
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
        self.box = self._box
        return points


def smooth_landmarks(track: np.ndarray, sigma: float = SMOOTH_SIGMA) -> np.ndarray:
    """Zero-phase (no lag) Gaussian smoothing of landmarks over time.

    track: (n, 68, 2) float32 with NaN rows for frames without a face; each run of
    consecutive faces is smoothed on its own. Returns a new array of the same shape.
    """
    out = track.copy()
    if sigma <= 0 or len(track) < 3:
        return out
    idx = np.flatnonzero(~np.isnan(track[:, 0, 0]))
    for run in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1):
        if len(run):
            out[run] = smoothing.gaussian(track[run], sigma)
    return out


def track_frames(frames: Iterable[np.ndarray], settings: TrackSettings, fps: float, *,
                 total: Optional[int] = None, progress: Progress = Progress()) -> FaceTrack:
    """The face track of an iterable of BGR frames (uint8 (H, W, 3)) at `fps`."""
    tracker = FaceTracker(settings)
    picker, bank = ExemplarPicker(), MouthBank()
    points_rows, box_rows = [], []
    with progress.stage("tracking face", total) as bar:
        for frame in frames:
            points = tracker(frame)
            picker.offer(frame, points)
            bank.offer(frame, points)
            points_rows.append(points if points is not None else np.full((N_POINTS, 2), np.nan, np.float32))
            box_rows.append(tracker.box if points is not None else (np.nan,) * 4)
            bar.update(1)
    landmarks = np.stack(points_rows) if points_rows else np.zeros((0, N_POINTS, 2), np.float32)
    boxes = np.array(box_rows, np.float32).reshape(-1, 4)
    return FaceTrack(landmarks, boxes, fps, picker.best(), bank, tracker.most_faces)


def cache_path(video_path: str, settings: TrackSettings, fps: float, size: Tuple[int, int]) -> str:
    """Where the track of this input with these settings, read at `size` (width, height), is cached."""
    return cache.entry_path("tracks", TRACK_VERSION, cache.file_digest(video_path), f"{fps:.4f}", size,
                            sorted(dataclasses.asdict(settings).items()))


def cached_track(path: str, n_expected: Optional[int] = None) -> Optional[FaceTrack]:
    """The track in cache entry `path`, or None (missing; discarded when damaged, or not
    `n_expected` frames long)."""
    track = cache.load(path, FaceTrack.from_arrays)
    if track is not None and n_expected is not None and \
            abs(len(track) - n_expected) > max(5, 0.1 * n_expected):  # containers' durations are approximate
        cache.discard(path, f"{len(track)} frames, the video has about {n_expected}")
        return None
    return track


def require_faces(track: FaceTrack, source: str, face_index: Optional[int] = None) -> None:
    """Raise NoFaceError when no frame of `track` has a face (saying so when there are faces,
    but fewer than `face_index` asks for)."""
    if len(track) and track.valid.any():
        return
    if face_index is not None and 0 < track.most_faces <= face_index:
        raise NoFaceError(f"{source}: no face number {face_index} (counting from 0 at the left): "
                          f"at most {track.most_faces} face{'s' if track.most_faces > 1 else ''} in a frame")
    raise NoFaceError(f"{source}: no face found in any frame")


def track_media(info: "MediaInfo", fps: float, settings: TrackSettings, *, use_cache: bool = True,
                progress: Progress = Progress(), first: Optional[int] = None) -> FaceTrack:
    """The face track of a probed video (every frame at `fps`) or photo (one frame), from the
    cache when this input was tracked before with the same settings. `first`: unless the whole
    track is cached, track only the first this many frames (a shorter track, not cached)."""
    from ..io.media import VideoReader, read_image

    path = cache_path(info.path, settings, fps, (info.width, info.height)) if use_cache and not info.is_image else None
    expected = int(round(info.duration * fps)) or None if not info.is_image else 1
    if path:
        track = cached_track(path, expected)
        if track is not None:
            log.debug("face track from cache %s", path)
            return track
    frames = [read_image(info.path, (info.width, info.height))] if info.is_image else VideoReader(info, fps, exact=False)
    quiet = Progress(True, progress.callback, progress.cancel) if info.is_image else progress
    if first is not None and not info.is_image and (expected is None or first < expected):
        return track_frames(itertools.islice(frames, first), settings, fps, total=first, progress=quiet)
    track = track_frames(frames, settings, fps, total=expected, progress=quiet)
    if path:
        cache.save(path, track.to_arrays())
    return track
