"""Sound features the generators read, all from Wav2Lip's log-mel spectrogram
(`lipsync.io.audio.melspectrogram`): a per-frame loudness drive and normalised mel windows.

Both are normalised per clip between its pauses and its loudest moments (`level_span`), so
that a quiet recording and a loud one look alike.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import smoothing
from ..io import audio as audio_lib

FLOOR_PERCENTILE = 15  # levels at or below this count as a pause
PEAK_PERCENTILE = 97  # the clip's loud moments
SILENCE_LEVEL = -3.2  # normalised log-mel of near-digital silence sits at -4
MIN_DYNAMICS = 0.4  # a clip whose loud moments are not this far above its pauses has no speech
# The loudness drive, chosen on the ten in-sync GRID clips (mean correlation with the real mouth
# opening 0.62; a 300-2500 Hz band, a 20 ms lead or a dead zone all did worse).
SPEECH_BAND_HZ = (55.0, 7600.0)
ENVELOPE_HALF_WIDTH_S = 0.04
ENVELOPE_LEAD_S = 0.0
DRIVE_SMOOTH_SIGMA = 0.6  # frames


def level_span(level: np.ndarray) -> Optional[Tuple[float, float]]:
    """(pause level, loud level) of a clip's log-mel levels, or None when it has no speech-like
    dynamics (silence, a steady hum)."""
    if level.size == 0:
        return None
    floor = max(float(np.percentile(level, FLOOR_PERCENTILE)), SILENCE_LEVEL)
    peak = float(np.percentile(level, PEAK_PERCENTILE))
    return (floor, peak) if peak - floor >= MIN_DYNAMICS else None


def mouth_drive(wav: np.ndarray, fps: float, n_frames: int, mel: Optional[np.ndarray] = None) -> np.ndarray:
    """How open the mouth should be at each video frame, from the sound's loudness alone.

    wav: float32 mono at 16 kHz (or its `mel`). Returns float32 (n_frames,) in [0, 1]: 0 for
    pauses and quiet consonants, 1 for the loudest moments of the clip.
    """
    if mel is None:
        mel = audio_lib.melspectrogram(wav)
    band = audio_lib.mel_band(*SPEECH_BAND_HZ)
    level = audio_lib.frame_envelope(mel, fps, n_frames, band, ENVELOPE_HALF_WIDTH_S, ENVELOPE_LEAD_S)
    span = level_span(level)
    if span is None:  # keep the mouth at rest
        return np.zeros(n_frames, np.float32)
    drive = np.clip((level - span[0]) / (span[1] - span[0]), 0.0, 1.0)
    return smoothing.gaussian(drive.astype(np.float64), DRIVE_SMOOTH_SIGMA).astype(np.float32)


def normalise_mel(mel: np.ndarray) -> np.ndarray:
    """Per-clip level normalisation of a (80, n) log-mel: pauses -> 0, loud speech -> 1
    (clipped to [-1.5, 2]); a clip without speech comes back as zeros."""
    span = level_span(mel.mean(axis=0))
    if span is None:
        return np.zeros_like(mel, dtype=np.float32)
    return np.clip((mel - span[0]) / (span[1] - span[0]), -1.5, 2.0).astype(np.float32)


def has_speech(mel: np.ndarray) -> bool:
    """Does a (80, n) log-mel have speech-like dynamics?"""
    return level_span(mel.mean(axis=0)) is not None


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
