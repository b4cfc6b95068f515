"""Phonetic evidence for the sync model: the phones pocketsphinx hears, grouped by what the
lips do (visemes), as one track per mel step.

Phones generalise across voices where spectra do not; grouping them by mouth shape keeps
only what the mouth shows and forgives the recogniser's confusions inside a group (p/b/m
look the same). The recogniser is English (`lipsync.io.phones.recognise`); other
languages get their nearest English phones.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from ..io.audio import MEL_FRAMES_PER_SECOND

VISEMES = {
    "silence": ("SIL", "+NSN+", "+SPN+"),
    "closed": ("P", "B", "M"),
    "lip-teeth": ("F", "V"),
    "rounded": ("UW", "UH", "OW", "OY", "W", "AO"),
    "open": ("AA", "AE", "AH", "AW", "AY"),
    "mid": ("EH", "EY", "ER", "R"),
    "spread": ("IY", "IH", "Y"),
    "tongue-teeth": ("TH", "DH"),
    "alveolar": ("T", "D", "N", "L", "S", "Z"),
    "post-alveolar": ("SH", "ZH", "CH", "JH"),
    "back": ("K", "G", "NG", "HH"),
}
N_VISEMES = len(VISEMES)
_INDEX = {phone: k for k, phones in enumerate(VISEMES.values()) for phone in phones}


def viseme_track(phones: Sequence[Tuple[str, float, float]], n_steps: int) -> np.ndarray:
    """float32 (n_steps, N_VISEMES): one-hot viseme of each mel step (80 per second) from
    (phone, start s, end s) segments; steps no segment covers read as silence."""
    out = np.zeros((n_steps, N_VISEMES), np.float32)
    out[:, 0] = 1.0
    for phone, start, end in phones:
        a = max(0, int(round(start * MEL_FRAMES_PER_SECOND)))
        b = min(n_steps, int(round(end * MEL_FRAMES_PER_SECOND)))
        if b > a:
            out[a:b] = 0.0
            out[a:b, _INDEX.get(phone, 0)] = 1.0
    return out


def hear(wav: np.ndarray, n_steps: int) -> np.ndarray:
    """The viseme track (n_steps, N_VISEMES) of 16 kHz mono sound."""
    from ..io.phones import recognise

    return viseme_track(recognise(wav), n_steps)

