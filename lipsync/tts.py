"""Offline text to speech: pyttsx3 over eSpeak NG from the espeakng-loader wheel.

No system package is needed: the wheel ships libespeak-ng and its voice data, which are
loaded before pyttsx3 looks for them.
"""
from __future__ import annotations

import contextlib
import ctypes
import io
import dataclasses
import functools
import os
from typing import List, Optional

from .errors import InputError, MissingBackendError, OutputError


DEFAULT_RATE = 175  # words per minute, eSpeak NG's own default


@dataclasses.dataclass(frozen=True)
class Voice:
    id: str
    name: str
    languages: List[str]


@functools.lru_cache(maxsize=1)
def _engine():
    try:
        import espeakng_loader
        import pyttsx3
    except ImportError as exc:
        raise MissingBackendError(f"text to speech needs pyttsx3 and espeakng-loader ({exc.name} is missing)") from None
    ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_GLOBAL)
    os.environ["ESPEAK_DATA_PATH"] = espeakng_loader.get_data_path()
    return pyttsx3.init("espeak")


def list_voices() -> List[Voice]:
    """The voices eSpeak NG offers (one or more per language)."""
    out = []
    for v in _engine().getProperty("voices"):
        langs = [l.decode("utf-8", "replace") if isinstance(l, bytes) else str(l) for l in (v.languages or [])]
        out.append(Voice(v.id, v.name, langs))
    return out


def find_voice(name: str) -> Voice:
    """A voice by id ('gmw/en-US'), name ('English (America)') or language code ('fr')."""
    voices = list_voices()
    key = name.lower()
    for match in (lambda v: v.id.lower() == key, lambda v: v.name.lower() == key,
                  lambda v: key in (l.lower() for l in v.languages),
                  lambda v: v.id.lower().endswith("/" + key),
                  lambda v: any(l.lower().startswith(key + "-") for l in v.languages)):
        for v in voices:
            if match(v):
                return v
    raise InputError(f"unknown voice {name!r}: see tts.py --list_voices")


def synthesize(text: str, out_path: str, *, voice: Optional[str] = None, rate: Optional[int] = None) -> str:
    """Speaks UTF-8 `text` into a WAV file (mono, 22.05 kHz) at `out_path`.

    voice: id, name or language code (see `list_voices`); rate: words per minute.
    The file is written under a temporary name and renamed when complete.
    """
    if not text or not text.strip():
        raise InputError("the text to speak is empty")
    if rate is not None and not 40 <= rate <= 600:
        raise InputError(f"--rate {rate}: give words per minute between 40 and 600")
    from .media import atomic_output

    engine = _engine()
    if voice:
        engine.setProperty("voice", find_voice(voice).id)
        engine.runAndWait()  # eSpeak resets the speed when the voice changes: apply the voice first
    engine.setProperty("rate", int(rate or DEFAULT_RATE))
    with atomic_output(out_path) as tmp:
        with contextlib.redirect_stdout(io.StringIO()):  # the espeak driver prints "Audio saved to ..."
            engine.save_to_file(text, tmp)
            engine.runAndWait()
        if not os.path.exists(tmp) or os.path.getsize(tmp) <= 44:
            raise OutputError(f"{out_path}: eSpeak NG produced no sound for this text")
    return out_path
