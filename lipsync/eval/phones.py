"""Phones heard in a sound (pocketsphinx's English phone recogniser) and whether the mouth
closes on the bilabials (p, b, m) among them."""
from __future__ import annotations

import os
from typing import List, Tuple

import numpy as np

from .metrics import closed_threshold

BILABIALS = ("P", "B", "M")
PHONE_RATE = 100  # pocketsphinx frames per second
PIECE_S = 30.0  # sound decoded as one utterance; longer sound goes in pieces (memory, time)


def phone_decoder(**options):
    """pocketsphinx's English phone-loop decoder for 16 kHz sound (`options`: more of its settings).
    Raises ImportError when pocketsphinx is not installed."""
    from pocketsphinx import Decoder, get_model_path

    return Decoder(allphone=os.path.join(get_model_path(), "en-us", "en-us-phone.lm.bin"), lm=None,
                   samprate=16000, loglevel="FATAL", beam=1e-20, pbeam=1e-20, lw=2.0, **options)


def recognise(wav: np.ndarray) -> List[Tuple[str, float, float]]:
    """(phone, start s, end s) of each phone pocketsphinx hears in 16 kHz mono sound in [-1, 1].

    Phone-loop decoding with the English phone language model that ships in the pocketsphinx
    wheel: no words, so any language's sound gets English phone labels. Raises ImportError
    when pocketsphinx is not installed.
    """
    decoder = phone_decoder()
    pcm = (np.clip(np.asarray(wav, np.float32), -1, 1) * 32767).astype(np.int16)
    piece = int(PIECE_S * 16000)
    heard = []
    for first in range(0, len(pcm), piece):
        decoder.start_utt()
        decoder.process_raw(pcm[first:first + piece].tobytes(), full_utt=True)
        decoder.end_utt()
        start = first / 16000
        heard += [(seg.word, start + seg.start_frame / PHONE_RATE, start + (seg.end_frame + 1) / PHONE_RATE)
                  for seg in decoder.seg()]
    return heard


def bilabial_closure(phones: List[Tuple[str, float, float]], openings: np.ndarray, fps: float) -> Tuple[float, int]:
    """(share, count): of the p/b/m phones, the share during which (give or take a frame) the
    mouth is closed at least once (the dub test's rule, metrics.closed_threshold, on these openings). NaN share when none
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
