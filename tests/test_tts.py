import numpy as np
import pytest

from lipsync.io import audio, tts
from lipsync.errors import InputError


def test_speaks_english_to_a_wav(tmp_path):
    out = str(tmp_path / "hello.wav")
    tts.synthesize("Hello, this sentence is spoken offline.", out)
    wav = audio.load_audio(out)
    assert 1.0 < len(wav) / 16000 < 6.0
    assert np.abs(wav).max() > 0.05


def test_speaks_other_languages_and_respects_rate(tmp_path):
    slow, fast = str(tmp_path / "slow.wav"), str(tmp_path / "fast.wav")
    text = "Guten Morgen, wie geht es Ihnen heute? Ich hoffe, gut."
    tts.synthesize(text, slow, voice="de", rate=100)
    tts.synthesize(text, fast, voice="de", rate=300)
    assert len(audio.load_audio(slow)) > 1.8 * len(audio.load_audio(fast))
    tts.synthesize("こんにちは、元気ですか。", str(tmp_path / "ja.wav"), voice="ja")
    # nothing re-spoken into an earlier call's temporary file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast.wav", "ja.wav", "slow.wav"]


def test_long_text(tmp_path):
    out = str(tmp_path / "long.wav")
    tts.synthesize("This sentence is part of a long reading. " * 60, out)
    assert len(audio.load_audio(out)) / 16000 > 60


def test_lists_voices():
    voices = tts.list_voices()
    assert len(voices) > 50
    assert tts.find_voice("fr").languages


def test_empty_text_is_refused(tmp_path):
    with pytest.raises(InputError, match="empty"):
        tts.synthesize("  \n", str(tmp_path / "x.wav"))
