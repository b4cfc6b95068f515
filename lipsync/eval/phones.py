"""Phones heard in a sound (pocketsphinx's English phone recogniser) and whether the mouth
closes on the bilabials (p, b, m) among them."""
from __future__ import annotations

import os
from typing import List, Tuple

import numpy as np

BILABIALS = ("P", "B", "M")
PHONE_RATE = 100  # pocketsphinx frames per second


def recognise(wav: np.ndarray) -> List[Tuple[str, float, float]]:
    """(phone, start s, end s) of each phone pocketsphinx hears in 16 kHz mono sound in [-1, 1].

    Phone-loop decoding with the English phone language model that ships in the pocketsphinx
    wheel: no words, so any language's sound gets English phone labels. Raises ImportError
    when pocketsphinx is not installed.
    """
    from pocketsphinx import Decoder, get_model_path

    decoder = Decoder(allphone=os.path.join(get_model_path(), "en-us", "en-us-phone.lm.bin"), lm=None,
                      samprate=16000, loglevel="FATAL", beam=1e-20, pbeam=1e-20, lw=2.0)
    pcm = (np.clip(np.asarray(wav, np.float32), -1, 1) * 32767).astype(np.int16).tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    return [(seg.word, seg.start_frame / PHONE_RATE, (seg.end_frame + 1) / PHONE_RATE) for seg in decoder.seg()]


def closed_threshold(openings: np.ndarray) -> float:
    """The dub test's rule: a mouth is closed below min + 20% of its (min, 95th percentile) range."""
    finite = openings[np.isfinite(openings)]
    if finite.size == 0:
        return float("nan")
    lo, hi = float(finite.min()), float(np.percentile(finite, 95))
    return lo + 0.2 * (hi - lo)


def bilabial_closure(phones: List[Tuple[str, float, float]], openings: np.ndarray, fps: float) -> Tuple[float, int]:
    """(share, count): of the p/b/m phones, the share during which (give or take a frame) the
    mouth is closed at least once, by `closed_threshold` of these openings. NaN share when none
    is heard or the face is missing there."""
    threshold = closed_threshold(openings)
    hits = total = 0
    for phone, start, end in phones:
        if phone not in BILABIALS:
            continue
        first, last = max(0, int(np.floor(start * fps)) - 1), min(len(openings), int(np.ceil(end * fps)) + 1)
        span = openings[first:last]
        if not np.isfinite(span).any():
            continue
        total += 1
        hits += bool(np.nanmin(span) <= threshold)
    return (hits / total if total else float("nan")), total
