"""Sound-to-mouth sync of a talking-face video: a learned speaking score and an offset estimate.

Two instruments, both independent of the model that makes the results:

- The speaking score: Light-ASD / LR-ASD (asd.py), on the face cropped as their published demo
  crops it, at their 25 fps. Its mean logit says whether this face speaks this sound at all.
  Scored against its sound shifted by -15..+15 frames (SyncNet's LSE-C protocol,
  `shift_scores`) it does not find offsets: on in-sync clips shifted by known amounts it moved
  with the shift in 7 of 42 cases (Light-ASD: 12; README), so it is not used for them.
- The offset: a small SyncNet-style judge (syncnet.py, trained here on other speakers than
  the dub test's) scores the mouth pixels against the sound shifted by -15..+15 frames, and so
  does the correlation of the sound's loudness with the mouth opening; the peak of the two
  curves together is the offset, its height above their median the confidence, as SyncNet
  reports them.

Offsets follow evaluate's rule: +k means the sound is k frames late (the sound at frame t + k
goes with the mouth at frame t).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Dict, Iterable, Optional

import cv2
import numpy as np

from ..face.landmarks import BROWS, JAW
from ..io.assets import asset_file
from . import asd

MAX_SHIFT = 15
CROP_SCALE = 0.4  # the demo's box padding
DEFAULT_SCORER = "lr_asd_talkset.npz"
DETREND_S = 0.6  # the loudness curve judges changes of the mouth faster than this


@functools.lru_cache(maxsize=2)
def load_scorer(name: str = DEFAULT_SCORER) -> asd.ASDNet:
    """The shipped scorer weights (lipsync/assets), loaded once per process."""
    with asset_file(name) as path, np.load(path) as data:
        return asd.ASDNet({k: data[k] for k in data.files})


def face_boxes(landmarks: np.ndarray) -> np.ndarray:
    """(n, 3) centre x, centre y and half-size of a face detector's box, from 68 landmarks.

    The scorer was trained on crops around S3FD boxes, which span the jaw's width and reach
    from just above the brows to the chin. NaN rows stay NaN.
    """
    left, right = landmarks[:, JAW, 0].min(1), landmarks[:, JAW, 0].max(1)
    brow, chin = landmarks[:, BROWS, 1].min(1), landmarks[:, JAW, 1].max(1)
    top = brow - 0.15 * (chin - brow)
    half = np.maximum(right - left, chin - top) / 2
    return np.stack([(left + right) / 2, (top + chin) / 2, half], axis=1)


def _fill_and_smooth(boxes: np.ndarray, kernel: int = 13) -> np.ndarray:
    """Frames without a face take the nearest face's box; then a running median, as the demo."""
    from scipy.signal import medfilt

    ok = np.isfinite(boxes[:, 0])
    if not ok.any():
        return boxes
    idx = np.arange(len(boxes))
    filled = np.stack([np.interp(idx, idx[ok], boxes[ok, c]) for c in range(boxes.shape[1])], axis=1)
    if len(boxes) >= kernel:
        filled = np.stack([medfilt(filled[:, c], kernel) for c in range(boxes.shape[1])], axis=1)
    return filled


def crop_face(gray: np.ndarray, cx: float, cy: float, half: float) -> np.ndarray:
    """The scorer's 112x112 crop: the demo pads the box by CROP_SCALE, resizes it to 224 and
    keeps the centre 112, i.e. 1.4 box half-sizes wide, from 0.3 above the box centre to 1.1
    below it. Outside the frame is grey 110, as the demo pads."""
    width = 2 * (1 + CROP_SCALE) * half / 2  # the centre half of the padded crop
    x0, y0 = cx - width / 2, cy - half + (1 + CROP_SCALE) * half / 2
    s = asd.CROP_SIZE / width
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float32)
    return cv2.warpAffine(gray, m, (asd.CROP_SIZE, asd.CROP_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=110)


def face_crops(frames: Iterable[np.ndarray], landmarks: np.ndarray, fps: float) -> np.ndarray:
    """Grey crops (n, 112, 112) of 25 fps BGR frames, boxes from a landmark track at `fps`.

    Frame j of the 25 fps stream takes the box of the track's frame nearest its time.
    """
    boxes = _fill_and_smooth(face_boxes(landmarks))
    crops = []
    for j, frame in enumerate(frames):
        i = min(len(boxes) - 1, int(round(j * fps / asd.FPS)))
        cx, cy, half = boxes[i]
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        crops.append(crop_face(gray, cx, cy, half) if np.isfinite(half) else
                     np.full((asd.CROP_SIZE, asd.CROP_SIZE), 110, np.uint8))
    return np.asarray(crops, np.uint8).reshape(-1, asd.CROP_SIZE, asd.CROP_SIZE)


@dataclass
class SyncScores:
    """Mean logit per candidate offset, and what they say."""
    by_shift: Dict[int, float]
    frames: int  # frames scored at each shift

    @property
    def offset(self) -> Optional[int]:
        return max(self.by_shift, key=self.by_shift.get) if self.by_shift else None

    @property
    def confidence(self) -> float:
        if not self.by_shift:
            return 0.0
        values = list(self.by_shift.values())
        return float(max(values) - np.median(values))

    @property
    def score(self) -> float:
        """Mean logit at shift 0: above 0, the scorer takes the face to be speaking this sound."""
        return self.by_shift.get(0, float("nan"))


def shift_scores(net: asd.ASDNet, feats: np.ndarray, faces: np.ndarray, max_shift: int = MAX_SHIFT) -> SyncScores:
    """Scores of faces (n, 112, 112) at 25 fps against their MFCCs shifted by -max_shift..max_shift frames.

    Every shift is judged on the same frames (those with sound at every shift), so no shift
    wins by being measured on fewer frames; fewer shifts are tried on short clips (at most a
    quarter of their frames either way).
    """
    n = min(len(faces), len(feats) // asd.MFCC_PER_FRAME)
    max_shift = max(0, min(max_shift, n // 4))
    if n - 2 * max_shift < 1:
        return SyncScores({}, 0)
    video = net.visual_embedding(faces[:n])
    sound = net.audio_embedding(feats[:n * asd.MFCC_PER_FRAME])
    frames = np.arange(max_shift, n - max_shift)
    shifts = np.arange(-max_shift, max_shift + 1)
    logits = net.scores(sound[frames[None, :] + shifts[:, None]], video[frames][None])
    return SyncScores({int(k): float(v) for k, v in zip(shifts, logits.mean(1))}, len(frames))


SPEAKING_WINDOW = 150  # frames (6 s) the scorer reads at once, the longest window of its published demo


def speaking(net: asd.ASDNet, wav: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-frame speaking logits (n,) of 25 fps face crops against their 16 kHz sound, scored in
    windows of 6 s (memory stays flat on long videos); n is cut to the sound's length."""
    samples = asd.MFCC_PER_FRAME * 160  # sound samples per video frame
    n = min(len(faces), len(wav) // samples)
    out = []
    for first in range(0, n, SPEAKING_WINDOW):
        last = min(n, first + SPEAKING_WINDOW)
        feats = asd.mfcc(wav[first * samples:last * samples])
        m = min(last - first, len(feats) // asd.MFCC_PER_FRAME)
        if m:
            out.append(net(feats[:m * asd.MFCC_PER_FRAME], faces[first:first + m]))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


# ---------------------------------------------------------------- the offset


def at_rate(values: np.ndarray, fps: float, n: int) -> np.ndarray:
    """Per-frame values of a track at `fps`, taken at the n frames of the 25 fps stream (nearest frame)."""
    if len(values) == 0:
        return np.full(n, np.nan)
    return values[np.minimum(len(values) - 1, np.round(np.arange(n) * fps / asd.FPS).astype(int))]


def _standardised(curve: Dict[int, float]) -> np.ndarray:
    v = np.array([curve[k] for k in sorted(curve)], float)
    if not np.isfinite(v).any():
        return np.zeros_like(v)
    v = np.where(np.isfinite(v), v, np.nanmedian(v))
    return (v - np.median(v)) / (v.std() + 1e-9)


@dataclass
class Offset:
    """Where the sound best fits the mouth, in 25 fps frames (+ = sound late; None where nothing
    fits: a silent sound, a mouth that never moves); how clearly (the peak of the combined curve
    above its median, in standard deviations over the shifts); and the per-clip sync score as
    the clip plays (offset 0): the mean of the judge's cosine and the loudness-opening
    correlation there, each in [-1, 1]."""
    frames: Optional[int]
    confidence: float
    score: float


def sound_offset(crops: np.ndarray, wav: np.ndarray, openings: np.ndarray, max_shift: int = MAX_SHIFT,
                 face: Optional[np.ndarray] = None, mel: Optional[np.ndarray] = None) -> Offset:
    """The offset of a 16 kHz sound against 25 fps face crops and their inner-lip openings.

    Two independent curves over shifts of -max_shift..max_shift frames, each standardised
    and then averaged: the judge's mean cosine of mouth pixels and sound (syncnet.py), and the
    correlation of the sound's loudness with the mouth opening (changes faster than 0.6 s).
    Each alone recovers known shifts in 33-37 of 42 cases on the development clips, fewer
    than together (39), as they fail on different clips (README). Frames past the end of the
    sound, and those without a face (`face`, boolean per frame), are not judged. `mel`: the
    sound's log-mel when the caller has it already.
    """
    from ..io import audio as audio_lib
    from . import metrics, syncnet

    n = min(len(crops), len(openings), len(wav) * asd.FPS // audio_lib.SAMPLE_RATE)
    mel = audio_lib.melspectrogram(wav) if mel is None else mel
    judge = syncnet.load_judge().shift_scores(crops[:n], wav, max_shift, None if face is None else face[:n], mel=mel)
    if not judge:
        return Offset(None, 0.0, float("nan"))
    shifts = sorted(judge)
    envelope = audio_lib.frame_envelope(mel, asd.FPS, n, slice(0, audio_lib.N_MELS))
    width = int(round(DETREND_S * asd.FPS))
    loudness = metrics.lag_correlations(metrics.detrend(envelope, width), metrics.detrend(openings[:n], width),
                                        max(shifts))
    combined = (_standardised(judge) + _standardised(loudness)) / 2
    at_zero = [v for v in (judge[0], loudness.get(0, float("nan"))) if np.isfinite(v)]
    score = float(np.mean(at_zero)) if at_zero else float("nan")
    if np.ptp(combined) < 1e-6:  # flat: silence, or a mouth that never moves
        return Offset(None, 0.0, score)
    best = int(np.argmax(combined))
    return Offset(shifts[best], float(combined[best] - np.median(combined)), score)
