"""Mouth shapes in a pose-normalised frame, and the sound features the sync model reads.

Canonical frame: origin midway between the four eye corners (landmarks 36, 39, 42, 45),
x along the eye line, y pointing down the face, one unit = the distance between the eye
centres. Eye corners barely move when a person blinks or speaks, so the mouth's shape in
this frame changes with speech and expression only, not with head position, roll or size.

A person's *rest* shape is the mean canonical mouth of their most closed frames; the sync
model predicts each frame's mouth as a displacement from that rest shape, which makes the
target largely the same across speakers.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import audio as audio_lib
from .face import MOUTH, inter_ocular

EYE_CORNERS = np.array([36, 39, 42, 45])
N_MOUTH = len(MOUTH)  # 20 landmarks -> 40 numbers
UPPER_LIP_TOP = np.array([50, 51, 52]) - MOUTH[0]  # indices inside the 20 mouth points
REST_PERCENTILE = 20  # frames at or below this opening count as closed

# Sound features: the mel spectrogram normalised per clip between its pauses and its
# loudest moments (so that a quiet recording and a loud one look alike).
FEATURE_FLOOR_PERCENTILE = 15
FEATURE_PEAK_PERCENTILE = 97
SILENCE_LEVEL = -3.2  # normalised log-mel of near-digital silence sits at -4


def frame_axes(points: np.ndarray) -> Tuple[np.ndarray, np.ndarray, float]:
    """(origin (2,), rotation (2, 2) with rows x and y axes, scale) of one (68, 2) landmark set."""
    corners = points[EYE_CORNERS].astype(np.float64)
    origin = corners.mean(0)
    eye = corners[2:].mean(0) - corners[:2].mean(0)
    x = eye / max(1e-9, float(np.linalg.norm(eye)))
    rot = np.array([x, [-x[1], x[0]]])
    return origin, rot, max(1e-6, inter_ocular(points))


def to_canonical(points: np.ndarray, which: np.ndarray = MOUTH) -> np.ndarray:
    """Landmarks `which` of one face in the canonical frame: float32 (len(which), 2)."""
    origin, rot, scale = frame_axes(points)
    return ((points[which] - origin) @ rot.T / scale).astype(np.float32)


def from_canonical(shape: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Canonical coordinates (k, 2) back to pixels in the pose of the face `points` (68, 2)."""
    origin, rot, scale = frame_axes(points)
    return (shape * scale @ rot + origin).astype(np.float32)


def canonical_mouths(track: np.ndarray) -> np.ndarray:
    """(n, 20, 2) canonical mouths of a (n, 68, 2) track; NaN rows where there is no face."""
    out = np.full((len(track), N_MOUTH, 2), np.nan, np.float32)
    for i, p in enumerate(track):
        if not np.isnan(p[0, 0]):
            out[i] = to_canonical(p)
    return out


def rest_shape(mouths: np.ndarray, openings: np.ndarray) -> np.ndarray:
    """Mean canonical mouth (20, 2) over the most closed frames (NaN frames ignored)."""
    ok = ~np.isnan(openings)
    if not ok.any():
        raise ValueError("no frame with a face")
    limit = np.percentile(openings[ok], REST_PERCENTILE)
    return mouths[ok & (openings <= limit + 1e-9)].mean(0).astype(np.float32)


def normalise_mel(mel: np.ndarray) -> np.ndarray:
    """Per-clip level normalisation of a (80, n) log-mel: pauses -> 0, loud speech -> 1.

    A clip without speech-like dynamics (silence, a steady hum) is returned as zeros.
    """
    level = mel.mean(axis=0)
    floor = max(float(np.percentile(level, FEATURE_FLOOR_PERCENTILE)), SILENCE_LEVEL) if level.size else 0.0
    peak = float(np.percentile(level, FEATURE_PEAK_PERCENTILE)) if level.size else 0.0
    if peak - floor < 0.4:
        return np.zeros_like(mel, dtype=np.float32)
    return np.clip((mel - floor) / (peak - floor), -1.5, 2.0).astype(np.float32)


def feature_windows(mel: np.ndarray, fps: float, n_frames: int, steps: int, shift: int = 0,
                    start: int = 0) -> np.ndarray:
    """Mel windows centred on video frames start .. start + n_frames - 1: float32 (n_frames, steps, n_mels).

    mel: (n_mels, n) normalised by `normalise_mel`. Frame i's window is centred on its
    mid time ((i + 0.5) / fps) plus `shift` video frames; steps outside the sound read 0
    (silence).
    """
    n_mels = mel.shape[0]
    frames = np.arange(start, start + n_frames)
    centres = np.round(((frames + 0.5 + shift) / fps) * audio_lib.MEL_FRAMES_PER_SECOND).astype(int)
    idx = centres[:, None] + np.arange(steps)[None, :] - steps // 2
    padded = np.concatenate([mel, np.zeros((n_mels, 1), np.float32)], axis=1)  # column n reads as silence
    idx = np.where((idx < 0) | (idx >= mel.shape[1]), mel.shape[1], idx)
    return np.ascontiguousarray(padded[:, idx].transpose(1, 2, 0))


def clip_features(wav: np.ndarray, fps: float, n_frames: int, steps: int, shift: int = 0,
                  mel: Optional[np.ndarray] = None) -> np.ndarray:
    """Sound features for every video frame of a clip (see `feature_windows`)."""
    if mel is None:
        mel = audio_lib.melspectrogram(wav)
    return feature_windows(normalise_mel(mel), fps, n_frames, steps, shift)
