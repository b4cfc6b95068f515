import numpy as np
import pytest

from lipsync.io import audio
from lipsync.errors import InputError

from conftest import speechlike, write_wav


def _slaney_mel_filters(sr, n_fft, n_mels, fmin, fmax):
    """Written from the Slaney/Auditory Toolbox definition, independently of librosa."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f):
        f = np.asarray(f, float)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m):
        m = np.asarray(m, float)
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    weights = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rise = (freqs - lo) / (mid - lo)
        fall = (hi - freqs) / (hi - mid)
        weights[i] = np.maximum(0, np.minimum(rise, fall)) * 2.0 / (hi - lo)
    return weights


def _reference_mel(wav):
    """Wav2Lip's recipe in plain numpy: pre-emphasis, reflect-padded STFT, mel, dB, normalise."""
    y = np.append(wav[0], wav[1:] - 0.97 * wav[:-1])
    y = np.pad(y, 400, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(800) / 800)  # periodic Hann
    n = 1 + (len(y) - 800) // 200
    frames = np.stack([y[i * 200:i * 200 + 800] * window for i in range(n)], axis=1)
    spec = np.abs(np.fft.rfft(frames, axis=0))
    mel = _slaney_mel_filters(16000, 800, 80, 55, 7600) @ spec
    db = 20 * np.log10(np.maximum(1e-5, mel)) - 20
    return np.clip(8 * (db + 100) / 100 - 4, -4, 4)


def test_melspectrogram_matches_independent_computation():
    wav = speechlike(1.3)
    ours = audio.melspectrogram(wav)
    ref = _reference_mel(wav.astype(np.float64))
    assert ours.shape == (80, 1 + len(wav) // 200) == ref.shape
    assert ours.dtype == np.float32
    assert np.abs(ours - ref).max() < 2e-3
    blocked = audio.melspectrogram(wav, block_steps=7)  # block edges must not show
    np.testing.assert_allclose(blocked, ours, atol=1e-5)


def test_filters_and_stft_match_librosa():
    """Wav2Lip computed its features with librosa; ours are numpy alone and must agree."""
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    np.testing.assert_allclose(audio.mel_filters(), ref, atol=1e-7)
    np.testing.assert_allclose(audio.mel_frequencies(82), librosa.mel_frequencies(n_mels=82, fmin=55, fmax=7600))
    y = speechlike(1.1)
    ours = audio.stft_magnitude(y)
    theirs = np.abs(librosa.stft(y, n_fft=800, hop_length=200, win_length=800, center=False))
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-4 * theirs.max()


def test_mel_windows_follow_wav2lip_indexing():
    mel = np.arange(80 * 100, dtype=np.float32).reshape(80, 100)
    win = audio.mel_windows(mel, fps=25, n_frames=40)
    assert win.shape == (40, 80, 16)
    np.testing.assert_array_equal(win[3], mel[:, 9:25])  # int(80 * 3 / 25) = 9
    np.testing.assert_array_equal(win[39], mel[:, 84:100])  # past the end: the last 16 steps
    np.testing.assert_array_equal(audio.mel_windows_at(mel, 25, [39, 3]), win[[39, 3]])  # by index


def test_frame_count_covers_the_sound():
    assert audio.frame_count(16000 * 3, 25) == 75
    assert audio.frame_count(16000, 29.97) == 30
    assert audio.frame_count(10, 25) == 1


def test_load_audio_resamples_to_16k_mono(media):
    wav = audio.load_audio(media["wav44"])
    assert wav.dtype == np.float32
    assert abs(len(wav) - 1.5 * 16000) < 200
    assert 0.05 < np.abs(wav).max() <= 1.0


def test_load_audio_takes_the_sound_of_a_video(tmp_path, media):
    import subprocess
    from conftest import ffmpeg

    out = str(tmp_path / "with_sound.mp4")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-i", media["video"], "-i", media["wav"], "-map", "0:v", "-map", "1:a",
                    "-c:v", "copy", "-c:a", "aac", "-shortest", out], check=True)
    wav = audio.load_audio(out)
    assert abs(len(wav) / 16000 - 2.0) < 0.15


def test_load_audio_rejects_text(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not sound\n" * 20)
    with pytest.raises(InputError, match=r"notes\.wav: not a readable audio file"):
        audio.load_audio(str(path))


def test_load_audio_rejects_empty_sound(tmp_path):
    path = write_wav(str(tmp_path / "empty.wav"), np.zeros(0, np.float32), 16000)
    with pytest.raises(InputError, match=r"empty\.wav: the audio is empty"):
        audio.load_audio(path)


def test_load_audio_rejects_a_silent_video(media):
    with pytest.raises(InputError, match="face.mp4: not an audio file: it has no sound track"):
        audio.load_audio(media["video"])


def test_frame_envelope_follows_loudness():
    wav = speechlike(2.0)
    mel = audio.melspectrogram(wav)
    env = audio.frame_envelope(mel, 25, 50, audio.mel_band(300, 2500))
    t = (np.arange(50) + 0.5) / 25
    loud = np.clip(np.sin(2 * np.pi * 2 * t), 0, None) ** 2 > 0.5
    assert env[loud].mean() > env[~loud].mean() + 1.0
