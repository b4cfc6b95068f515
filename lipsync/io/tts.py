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
from typing import List, Optional, Sequence

from ..errors import InputError, MissingBackendError, OutputError
from .files import atomic_output, check_output


DEFAULT_RATE = 175  # words per minute, eSpeak NG's own default
DEFAULT_VOICE = "gmw/en"
# Without a voice, text in one of these scripts gets the language that writes most of it
# (the English default would spell it letter by letter); Latin script stays English.
SCRIPT_VOICES = (  # (first, last code point, eSpeak NG language)
    (0x0370, 0x03FF, "el"), (0x0400, 0x04FF, "ru"), (0x0530, 0x058F, "hy"), (0x0590, 0x05FF, "he"),
    (0x0600, 0x06FF, "ar"), (0x0750, 0x077F, "ar"), (0x0900, 0x097F, "hi"), (0x0980, 0x09FF, "bn"),
    (0x0A00, 0x0A7F, "pa"), (0x0A80, 0x0AFF, "gu"), (0x0B80, 0x0BFF, "ta"), (0x0C00, 0x0C7F, "te"),
    (0x0C80, 0x0CFF, "kn"), (0x0D00, 0x0D7F, "ml"), (0x0D80, 0x0DFF, "si"), (0x0E00, 0x0E7F, "th"),
    (0x1000, 0x109F, "my"), (0x10A0, 0x10FF, "ka"), (0x1200, 0x137F, "am"), (0x3040, 0x30FF, "ja"),
    (0x3400, 0x4DBF, "cmn"), (0x4E00, 0x9FFF, "cmn"), (0xAC00, 0xD7AF, "ko"), (0xFB50, 0xFDFF, "ar"),
    (0xFE70, 0xFEFF, "ar"),
)


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


def voice_for_text(text: str) -> str:
    """The voice for `text` when none is given: the language of the script most of its letters
    are written in (kana anywhere means Japanese, not Chinese), else English."""
    counts: dict = {}
    for ch in text:
        code = ord(ch)
        for first, last, language in SCRIPT_VOICES:
            if first <= code <= last:
                counts[language] = counts.get(language, 0) + 1
                break
    latin = sum(ch.isalpha() and ord(ch) < 0x0250 for ch in text)
    if not counts or max(counts.values()) <= latin:
        return DEFAULT_VOICE
    try:
        return find_voice("ja" if counts.get("ja") else max(counts, key=counts.get)).id
    except InputError:  # this eSpeak NG lacks the language
        return DEFAULT_VOICE


def require_sound(audio_path: Optional[str], text: Optional[str], hint: str) -> None:
    """InputError for a text that is empty, or for neither a sound nor a text (`hint`: how to
    give one, in the words of the front end)."""
    if text is not None and not text.strip():
        raise InputError("the text to speak is empty")
    if text is None and not audio_path:
        raise InputError(f"no sound given: {hint}")


def synthesize(text: str, out_path: str, *, voice: Optional[str] = None, rate: Optional[int] = None,
               inputs: Sequence[Optional[str]] = ()) -> str:
    """Speaks UTF-8 `text` into a WAV file (mono, 22.05 kHz) at `out_path`.

    voice: id, name or language code (see `list_voices`), by default chosen from the text's
    script (`voice_for_text`); rate: words per minute; inputs: files the output must not be.
    The file is written under a temporary name and renamed when complete.
    """
    check_output(out_path, "speech output", extensions=(".wav",), inputs=inputs)
    require_sound(None, text or "", "")
    if rate is not None and not 40 <= rate <= 600:
        raise InputError(f"speaking rate {rate}: give words per minute between 40 and 600")
    binding, sample_rate = _espeak()
    binding.SetVoiceByName((find_voice(voice).id if voice else voice_for_text(text)).encode("utf-8"))
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
