"""Audio loading and Wav2Lip-compatible log-mel features.

Every input is decoded by ffmpeg to 16 kHz mono float32. The mel spectrogram follows
Wav2Lip's `audio.py` exactly (pre-emphasis, STFT, Slaney mel filters, dB, symmetric
normalisation to [-4, 4]), so features computed here can drive the official generator.
"""
from __future__ import annotations

import functools
import re
import subprocess
from typing import Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from .media import check_readable, ffmpeg_command, last_error

SAMPLE_RATE = 16000
N_FFT = 800
HOP_LENGTH = 200
WIN_LENGTH = 800
N_MELS = 80
FMIN = 55
FMAX = 7600
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20
MIN_LEVEL_DB = -100
MAX_ABS_VALUE = 4.0
MEL_STEP_SIZE = 16  # mel frames per video-frame window (0.2 s)
MEL_FRAMES_PER_SECOND = SAMPLE_RATE / HOP_LENGTH  # 80


_FRAMECRC_TIME_BASE = re.compile(r"#tb 0: (\d+)/(\d+)")


def stream_starts(path: str) -> Tuple[Optional[float], Optional[float]]:
    """(video, audio): when the first frame and the first sound sample of a file are presented,
    in seconds on the file's clock (0 = its earliest stream); None for a stream it lacks.

    A stream that starts late (a container start time or an edit list, common in phone and
    screen recordings) is otherwise decoded as if it started at 0. Each time is the first
    decoded frame's in ffmpeg's framecrc listing of that stream alone (the showinfo filters'
    log lines, read before, now and then lacked the first frame's).
    """
    return _first_frame_time(path, "v"), _first_frame_time(path, "a")


def _first_frame_time(path: str, kind: str) -> Optional[float]:
    """The first decoded frame's time of the file's first stream of `kind` ("v" or "a"), or None."""
    other = "-an" if kind == "v" else "-vn"
    cmd = ffmpeg_command("-i", path, "-map", f"0:{kind}:0?", other, "-sn", "-dn", f"-frames:{kind}", "1",
                         "-f", "framecrc", "-")
    listing = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode("utf-8", "replace")
    if f"#media_type 0: {'video' if kind == 'v' else 'audio'}" not in listing:
        return None  # no such stream (ffmpeg may then have picked another)
    base = None
    for line in listing.splitlines():
        header = _FRAMECRC_TIME_BASE.match(line)
        if header:
            base = int(header[1]) / int(header[2])
        elif base is not None and not line.startswith("#") and line.count(",") >= 2:
            return round(int(line.split(",")[2]) * base, 6)
    return None


def load_audio(path: str, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first sound stream of any audio or video file.

    Returns a float32 array of shape (n_samples,), mono, at `sr` Hz, in [-1, 1]. For a file
    with a picture it is on the file's clock: sample 0 is the file's time 0, as a player plays
    it, so a sound stream that starts late is preceded by silence. (VideoReader puts frames on the same clock: a picture that
    starts late begins with copies of its first frame.)
    Raises InputError when the file is missing, has no sound, or the sound is empty.
    """
    check_readable(path, "audio")
    cmd = ffmpeg_command("-i", path, "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sr), "-f", "f32le", "-")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        if "matches no streams" in err or "Stream map" in err:
            raise InputError(f"{path}: not an audio file: it has no sound track")
        raise InputError(f"{path}: not a readable audio file ({last_error(err, 'unknown format', path)})")
    wav = np.frombuffer(proc.stdout, np.float32)  # read-only view: no second copy of long audio
    if wav.size < sr // 100:
        raise InputError(f"{path}: the audio is empty ({wav.size / sr:.2f} s of sound)")
    return _on_file_clock(wav, path, sr)


def _on_file_clock(wav: np.ndarray, path: str, sr: int) -> np.ndarray:
    """`wav` preceded by silence for as long as its stream starts after the file's time 0, in a
    file with a picture (a sound-only file has no other stream to keep in step with: its first
    sample is its start)."""
    video_start, audio_start = stream_starts(path)
    if video_start is None:
        return wav
    shift = int(round((audio_start or 0.0) * sr))
    if shift < sr // 1000:  # under a millisecond: rounding
        return wav
    return np.concatenate([np.zeros(shift, np.float32), wav])


# Slaney's mel scale (librosa's default, which Wav2Lip used): linear below 1 kHz, logarithmic above
_MEL_LINEAR_HZ = 200.0 / 3  # Hz per mel below the break
_MEL_BREAK_HZ = 1000.0
_MEL_LOG_STEP = np.log(6.4) / 27.0  # log-Hz per mel above the break


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, np.float64)
    log_part = _MEL_BREAK_HZ / _MEL_LINEAR_HZ + np.log(np.maximum(hz, 1e-10) / _MEL_BREAK_HZ) / _MEL_LOG_STEP
    return np.where(hz >= _MEL_BREAK_HZ, log_part, hz / _MEL_LINEAR_HZ)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    break_mel = _MEL_BREAK_HZ / _MEL_LINEAR_HZ
    return np.where(mel >= break_mel, _MEL_BREAK_HZ * np.exp(_MEL_LOG_STEP * (mel - break_mel)), mel * _MEL_LINEAR_HZ)


def mel_frequencies(n: int, fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """`n` frequencies (Hz) evenly spaced on the mel scale from `fmin` to `fmax`."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n))


@functools.lru_cache(maxsize=4)
def mel_filters(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """Slaney-normalised triangular mel filterbank, shape (n_mels, n_fft // 2 + 1).

    The same bank as librosa.filters.mel (tested), built with numpy alone: importing
    librosa costs more than a second per run.
    """
    edges = mel_frequencies(n_mels + 2, fmin, fmax)
    bins = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    rise = (bins[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    fall = (edges[2:, None] - bins[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    area = 2.0 / (edges[2:] - edges[:-2])  # each filter has the same area
    return (np.maximum(0.0, np.minimum(rise, fall)) * area[:, None]).astype(np.float32)


@functools.lru_cache(maxsize=2)
def _window(n: int) -> np.ndarray:
    """Periodic Hann window (librosa's / scipy's fftbins=True)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def stft_magnitude(y: np.ndarray) -> np.ndarray:
    """|STFT| of `y` without padding: frames of N_FFT every HOP_LENGTH samples, Hann window.
    Returns float32 (N_FFT // 2 + 1, n_frames)."""
    frames = np.lib.stride_tricks.sliding_window_view(y, WIN_LENGTH)[::HOP_LENGTH] * _window(WIN_LENGTH)
    return np.abs(np.fft.rfft(frames, n=N_FFT, axis=1)).astype(np.float32).T


def preemphasis(wav: np.ndarray, k: float = PREEMPHASIS) -> np.ndarray:
    """y[n] = x[n] - k x[n-1], with x[-1] = 0."""
    out = np.empty_like(wav)
    out[0] = wav[0]
    out[1:] = wav[1:] - k * wav[:-1]
    return out


def melspectrogram(wav: np.ndarray, block_steps: int = 4000) -> np.ndarray:
    """Wav2Lip's normalised log-mel spectrogram.

    wav: float32 (n_samples,) at 16 kHz. Returns float32 (80, n_steps) in [-4, 4],
    with n_steps = 1 + n_samples // 200 (80 steps per second, centred frames).
    The STFT runs over blocks of `block_steps` frames, so memory stays flat for long audio.
    """
    # centred frames, padded by reflection as librosa 0.7 (Wav2Lip's) did
    y = np.pad(preemphasis(wav), N_FFT // 2, mode="reflect" if len(wav) > N_FFT // 2 else "constant")
    n_steps = 1 + len(wav) // HOP_LENGTH
    out = np.empty((N_MELS, n_steps), np.float32)
    for first in range(0, n_steps, block_steps):
        last = min(n_steps, first + block_steps)
        chunk = y[first * HOP_LENGTH:(last - 1) * HOP_LENGTH + N_FFT]
        out[:, first:last] = _log_mel(chunk)
    return out


def _log_mel(y: np.ndarray) -> np.ndarray:
    """The normalised log-mel (80, n) of pre-emphasised samples holding n whole STFT frames."""
    spec = stft_magnitude(y.astype(np.float32, copy=False))
    db = 20.0 * np.log10(np.maximum(1e-5, mel_filters() @ spec)) - REF_LEVEL_DB
    return np.clip(2 * MAX_ABS_VALUE * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS_VALUE,
                   -MAX_ABS_VALUE, MAX_ABS_VALUE)


class MelStream:
    """`melspectrogram` of a sound that arrives in chunks: `feed` returns the steps whose
    window is complete (step k, centred on sample k * HOP_LENGTH, needs the sound up to
    N_FFT // 2 samples after it). The same steps as the whole sound's, except the first few,
    whose window reaches before the start: zeros there instead of a reflection of the sound
    to come."""

    def __init__(self):
        self._tail = np.zeros(N_FFT // 2, np.float32)  # pre-emphasised, from the next step's window start
        self._last = 0.0  # the sample before the chunk to come, for the pre-emphasis
        self.steps = 0  # steps handed out so far

    def feed(self, wav: np.ndarray) -> np.ndarray:
        """float32 (80, k): the steps completed by `wav` (float32 mono at 16 kHz; k may be 0)."""
        wav = np.asarray(wav, np.float32).ravel()
        if wav.size == 0:
            return np.zeros((N_MELS, 0), np.float32)
        pre = np.empty_like(wav)
        pre[0] = wav[0] - PREEMPHASIS * self._last
        pre[1:] = wav[1:] - PREEMPHASIS * wav[:-1]
        self._last = float(wav[-1])
        self._tail = np.concatenate([self._tail, pre])
        k = (len(self._tail) - N_FFT) // HOP_LENGTH + 1 if len(self._tail) >= N_FFT else 0
        if k <= 0:
            return np.zeros((N_MELS, 0), np.float32)
        out = _log_mel(self._tail[:(k - 1) * HOP_LENGTH + N_FFT])
        self._tail = self._tail[k * HOP_LENGTH:]
        self.steps += k
        return out


def float_samples(chunk: np.ndarray) -> np.ndarray:
    """float32 (n,) in [-1, 1] of mono samples given as float or int16."""
    chunk = np.asarray(chunk)
    if chunk.dtype == np.int16:
        return (chunk.astype(np.float32) / 32768.0).ravel()
    return chunk.astype(np.float32, copy=False).ravel()


def frame_count(n_samples: int, fps: float, sr: int = SAMPLE_RATE) -> int:
    """Number of video frames that cover `n_samples` of audio at `fps` (at least 1)."""
    return max(1, int(round(n_samples / sr * fps)))


def mel_window_start(frame_index: int, fps: float) -> int:
    """First mel step of video frame `frame_index`'s window: int(80 * i / fps)."""
    return int(MEL_FRAMES_PER_SECOND * frame_index / fps)


def mel_windows(mel: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """Per-video-frame mel windows as Wav2Lip cuts them, for frames 0 .. n_frames - 1.

    mel: (80, n_steps). Returns float32 (n_frames, 80, 16); a window that would run past
    the end is taken as the last 16 steps.
    """
    return mel_windows_at(mel, fps, range(n_frames))


def mel_windows_at(mel: np.ndarray, fps: float, frames: Sequence[int]) -> np.ndarray:
    """The mel windows (see `mel_windows`) of the given video frame indices: (len(frames), 80, 16)."""
    if mel.shape[1] < MEL_STEP_SIZE:
        mel = np.pad(mel, ((0, 0), (0, MEL_STEP_SIZE - mel.shape[1])), constant_values=-MAX_ABS_VALUE)
    out = np.empty((len(frames), mel.shape[0], MEL_STEP_SIZE), np.float32)
    last = mel.shape[1] - MEL_STEP_SIZE
    for k, i in enumerate(frames):
        start = min(mel_window_start(i, fps), last)
        out[k] = mel[:, start:start + MEL_STEP_SIZE]
    return out


def mel_band(fmin_hz: float, fmax_hz: float) -> slice:
    """The mel bins whose centre frequencies lie in [fmin_hz, fmax_hz]."""
    centres = mel_frequencies(N_MELS + 2)[1:-1]
    idx = np.nonzero((centres >= fmin_hz) & (centres <= fmax_hz))[0]
    return slice(int(idx[0]), int(idx[-1]) + 1)


def frame_envelope(mel: np.ndarray, fps: float, n_frames: int, band: slice, half_width_s: float = 0.04,
                   lead_s: float = 0.0) -> np.ndarray:
    """Mean log-mel level of `band` around each video frame's centre time.

    The window spans +-`half_width_s` around (i + 0.5) / fps + `lead_s`. Returns float32
    (n_frames,) in the normalised units of `melspectrogram` ([-4, 4]).
    """
    centres = ((np.arange(n_frames) + 0.5) / fps + lead_s) * MEL_FRAMES_PER_SECOND
    return window_means(mel[band].mean(axis=0), np.round(centres).astype(int), half_width_s)


def window_means(level: np.ndarray, centres: np.ndarray, half_width_s: float) -> np.ndarray:
    """float32 (len(centres),): the mean of a per-step `level` track over +-`half_width_s` around
    each of the steps `centres`, the window cut to the track (at least its nearest step)."""
    half = max(1, int(round(half_width_s * MEL_FRAMES_PER_SECOND)))
    cumsum = np.concatenate([[0.0], np.cumsum(level, dtype=np.float64)])
    lo = np.clip(centres - half, 0, len(level) - 1)
    hi = np.clip(centres + half + 1, 1, len(level))
    hi = np.maximum(hi, lo + 1)
    return ((cumsum[hi] - cumsum[lo]) / (hi - lo)).astype(np.float32)
