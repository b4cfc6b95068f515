"""Offline text to speech: eSpeak NG from the espeakng-loader wheel, through pyttsx3's binding.

No system package is needed: the wheel ships libespeak-ng and its voice data, which are
loaded before pyttsx3's binding looks for them.
"""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import os
import wave
from typing import List, Optional

from ..errors import InputError, MissingBackendError, OutputError
from .media import atomic_output


DEFAULT_RATE = 175  # words per minute, eSpeak NG's own default
DEFAULT_VOICE = "gmw/en"


@dataclasses.dataclass(frozen=True)
class Voice:
    id: str
    name: str
    languages: List[str]


@functools.lru_cache(maxsize=1)
def _espeak():
    """pyttsx3's ctypes binding of eSpeak NG, initialised once in synchronous mode.

    pyttsx3's own engine loop queues property changes and synthesis asynchronously, and
    then loses the speaking rate now and then and re-speaks the previous text on the next
    run; calling eSpeak synchronously through the same binding is deterministic.
    Returns (binding, sample rate).
    """
    try:
        import espeakng_loader
    except ImportError:
        raise MissingBackendError("text to speech needs espeakng-loader (pip install espeakng-loader)") from None
    ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_GLOBAL)
    os.environ["ESPEAK_DATA_PATH"] = espeakng_loader.get_data_path()
    try:
        from pyttsx3.drivers import _espeak as binding
    except ImportError:
        raise MissingBackendError("text to speech needs pyttsx3 (pip install pyttsx3)") from None
    sample_rate = binding.Initialize(binding.AUDIO_OUTPUT_SYNCHRONOUS, 0)
    if sample_rate <= 0:
        raise MissingBackendError("eSpeak NG could not start (espeakng-loader's data folder is missing?)")
    return binding, sample_rate


def list_voices() -> List[Voice]:
    """The voices eSpeak NG offers (one or more per language)."""
    binding, _ = _espeak()
    out = []
    for v in binding.ListVoices(None):
        # `languages` is a priority byte followed by the language code
        langs = [v.languages[1:].decode("utf-8", "replace")] if v.languages else []
        out.append(Voice(v.identifier.decode("utf-8").lower(), v.name.decode("utf-8"), langs))
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
    raise InputError(f"unknown voice {name!r}: choose one from the voice list (lipsync.io.tts.list_voices())")


def synthesize(text: str, out_path: str, *, voice: Optional[str] = None, rate: Optional[int] = None) -> str:
    """Speaks UTF-8 `text` into a WAV file (mono, 22.05 kHz) at `out_path`.

    voice: id, name or language code (see `list_voices`); rate: words per minute.
    The file is written under a temporary name and renamed when complete.
    """
    if not text or not text.strip():
        raise InputError("the text to speak is empty")
    if rate is not None and not 40 <= rate <= 600:
        raise InputError(f"speaking rate {rate}: give words per minute between 40 and 600")
    binding, sample_rate = _espeak()
    binding.SetVoiceByName((find_voice(voice).id if voice else DEFAULT_VOICE).encode("utf-8"))
    binding.SetParameter(binding.RATE, int(rate or DEFAULT_RATE), 0)  # after the voice: a voice change resets it
    chunks: List[bytes] = []

    def collect(samples, count, events):
        if count > 0:
            chunks.append(ctypes.string_at(samples, count * 2))
        return 0

    binding.SetSynthCallback(collect)
    binding.Synth(text, flags=binding.CHARS_UTF8 | binding.ENDPAUSE)  # returns when all sound is delivered
    if not chunks:
        raise OutputError(f"{out_path}: eSpeak NG produced no sound for this text")
    with atomic_output(out_path) as tmp:
        with wave.open(tmp, "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(sample_rate)
            f.writeframes(b"".join(chunks))
    return out_path
