"""Phones heard in a sound: pocketsphinx's English phone recogniser (for the sound-to-mouth
planners, training, and the p/b/m closures `lipsync.eval.metrics` measures)."""
from __future__ import annotations

import os
from typing import List, Tuple

import numpy as np

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
