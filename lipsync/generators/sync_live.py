"""The sync model on a stream: the mouth of each frame as soon as the sound `lookahead_s` past
it has arrived, with bounded work per chunk.

`plan_mouths` reads the whole sound: the speaker normalisation, the phones, the loudness span
and the pauses are all measured over the clip. A stream knows only the sound so far, so here
each of them is its causal counterpart:

- the log-mel steps come from `MelStream` as their windows complete;
- the speaker normalisation is the running one the model was trained with on 30% of its
  clips (`SpeakerNorm.running`);
- the phones come from pocketsphinx decoding live (`LivePhones`): its partial hypothesis
  gives the newest phones, an utterance ends every UTTERANCE_S so that its cepstral mean
  follows the voice;
- the pause and loud levels (`features.level_span`) are percentiles of the last HISTORY_S of
  sound (typical speech levels for the first LEVELS_AFTER_S: kept longer, as a prior, they held
  a loud recording's mouth open through its pauses for many seconds);
- a quiet stretch is a pause once it has lasted MIN_PAUSE_S, or OPEN_PAUSE_S when it runs on
  to the newest sound (its end is not known yet);
- the smoothing over time holds the newest frame (as `smoothing.gaussian` holds an edge).

The model reads `dims.lookahead` model steps (0.2 s) of sound after a frame, plus the
spectrogram's half window: `full_lookahead` (about 0.26 s at 25 fps) is the delay at which it
hears everything it would offline. A shorter `lookahead_s` waits less and reads the missing
sound as the newest step held.
"""
from __future__ import annotations

import collections
from typing import Deque, List, Optional, Tuple

import numpy as np

from .. import smoothing
from ..io import audio as audio_lib
from ..io.features import DRIVE_SMOOTH_SIGMA, ENVELOPE_HALF_WIDTH_S, ENVELOPE_LEAD_S, SPEECH_BAND_HZ, level_span
from ..io.phones import PHONE_RATE
from ..stages import SoundStream
from .sync_shape import SMOOTH_SIGMA, pause_weights, placed, quiet_steps, styled
from .visemes import N_VISEMES, _INDEX

UTTERANCE_S = 3.0  # the live recogniser ends an utterance this often (its cepstral mean updates then)
HISTORY_S = 60.0  # the pause and loud levels are percentiles of this much of the latest sound
PRIOR_LEVELS = (-2.6, -0.6)  # typical pause and loud levels of speech (log-mel units)...
LEVELS_AFTER_S = 1.0  # ... until this much has been heard
KEEP_STEPS = 400  # mel steps (5 s) of the past kept, beyond what the network reads
# pocketsphinx's initial cepstral mean for live decoding: measured on speech at a usual level (its default,
# 40, suits a quieter microphone and loses the first seconds)
CMN_INIT = "80.6,-3.92,-3.60,-4.16,-5.46,-1.45,1.65,-3.47,0.10,-5.05,-2.69,-1.13,-2.74"


class LivePhones:
    """English phones heard in a stream (see `lipsync.io.phones.recognise`), as viseme rows per
    mel step: decoded live, the newest from the partial hypothesis."""

    def __init__(self):
        from ..io.phones import phone_decoder

        self._decoder = phone_decoder(cmninit=CMN_INIT)
        self._decoder.start_utt()
        self._start = 0  # samples before the current utterance
        self._samples = 0
        self._done: List[Tuple[int, int, int]] = []  # (viseme, first mel step, end step) of ended utterances
        self._current: List[Tuple[int, int, int]] = []  # ... of the current one, as hypothesised now

    def feed(self, wav: np.ndarray) -> None:
        pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16)
        self._decoder.process_raw(pcm.tobytes(), full_utt=False)
        self._samples += len(pcm)
        if self._samples - self._start >= UTTERANCE_S * audio_lib.SAMPLE_RATE:
            self._decoder.end_utt()
            self._done += self._segments()
            self._current = []
            self._start = self._samples
            self._decoder.start_utt()
        else:
            self._current = self._segments()

    def _segments(self) -> List[Tuple[int, int, int]]:
        offset = self._start / audio_lib.SAMPLE_RATE
        out = []
        for seg in self._decoder.seg() or []:
            first = int(round((offset + seg.start_frame / PHONE_RATE) * audio_lib.MEL_FRAMES_PER_SECOND))
            end = int(round((offset + (seg.end_frame + 1) / PHONE_RATE) * audio_lib.MEL_FRAMES_PER_SECOND))
            out.append((_INDEX.get(seg.word, 0), first, end))
        return out

    def rows(self, first: int, end: int) -> np.ndarray:
        """float32 (end - first, N_VISEMES): the one-hot viseme of mel steps first .. end - 1; steps
        past the newest phone hold it, steps no phone covers read as silence."""
        self._done = [s for s in self._done if s[2] > first - KEEP_STEPS]
        segments = self._done + self._current
        out = np.zeros((end - first, N_VISEMES), np.float32)
        out[:, 0] = 1.0
        for viseme, a, b in segments:
            a, b = max(a, first) - first, min(b, end) - first
            if b > a:
                out[a:b] = 0.0
                out[a:b, viseme] = 1.0
        if segments:
            last_end = segments[-1][2] - first
            if 0 <= last_end < end - first:
                out[last_end:] = 0.0
                out[last_end:, segments[-1][0]] = 1.0
        return out


class _Levels:
    """The (pause, loud) levels of the latest HISTORY_S of a level track, as `features.level_span`
    measures a whole clip's; typical speech levels (PRIOR_LEVELS) until LEVELS_AFTER_S of it has
    been heard."""

    def __init__(self, rate: float):
        self.rate = rate
        self._values: Deque[float] = collections.deque(maxlen=int(HISTORY_S * rate))

    def add(self, values: np.ndarray) -> None:
        self._values.extend(np.asarray(values, np.float64).tolist())

    def span(self) -> Optional[Tuple[float, float]]:
        if len(self._values) < LEVELS_AFTER_S * self.rate:
            return PRIOR_LEVELS
        return level_span(np.fromiter(self._values, np.float64))


class LivePlan(SoundStream):
    """The canonical mouths (n, 20, 2) of a stream's frames, handed out in order as the sound
    arrives: the sync model's `SoundStream`."""

    def __init__(self, person, fps: float, lookahead_s: Optional[float] = None):
        self.person, self.fps = person, fps
        self.models = person.models
        self.dims = self.models[0].dims
        self.lookahead_s = self.full_lookahead(self.dims) if lookahead_s is None else float(lookahead_s)
        self.frames_out = 0
        self.samples = 0
        self._limit: Optional[int] = None  # frames in all, once the sound has ended
        self._mel = audio_lib.MelStream()
        self._norms = [m.norm() for m in self.models]
        self._phones = LivePhones() if self.dims.visemes else None
        self._first = 0  # mel step of the first row kept
        self._rows = [np.zeros((0, self.dims.n_mels), np.float32) for _ in self.models]  # normalised, per model
        self._level = np.zeros(0, np.float32)  # mean log-mel of each kept step (pauses)
        self._band = np.zeros(0, np.float32)  # ... of the speech band (the loudness drive)
        self._band_slice = audio_lib.mel_band(*SPEECH_BAND_HZ)
        self._step_levels = _Levels(audio_lib.MEL_FRAMES_PER_SECOND)
        self._frame_levels = _Levels(fps)
        self._radius = max(1, int(np.ceil(smoothing.TRUNCATE * max(DRIVE_SMOOTH_SIGMA, SMOOTH_SIGMA))))
        self._past_disp = np.zeros((0, self.dims.n_points, 2), np.float32)
        self._past_drive = np.zeros(0, np.float32)

    @staticmethod
    def full_lookahead(dims) -> float:
        """Seconds of sound after a frame's mid time at which the model hears all it would offline:
        its look-ahead, the next model step (read to interpolate), and the spectrogram's half window."""
        from .sync_model import MEL_PER_STEP

        return (dims.lookahead_s + (MEL_PER_STEP + 1) / audio_lib.MEL_FRAMES_PER_SECOND
                + audio_lib.N_FFT // 2 / audio_lib.SAMPLE_RATE)

    def feed(self, chunk: np.ndarray) -> np.ndarray:
        """Adds `chunk` (float32 or int16 mono at 16 kHz); returns the mouths of the frames that
        became final, in order (possibly none)."""
        chunk = audio_lib.float_samples(chunk)
        self.samples += len(chunk)
        if self._phones is not None and len(chunk):
            self._phones.feed(chunk)
        mel = self._mel.feed(chunk)
        if mel.shape[1]:
            self._rows = [np.concatenate([rows, norm.running(mel)]) for rows, norm in zip(self._rows, self._norms)]
            level = mel.mean(axis=0)
            self._level = np.concatenate([self._level, level])
            self._band = np.concatenate([self._band, mel[self._band_slice].mean(axis=0)])
            self._step_levels.add(level)
        heard = self.samples / audio_lib.SAMPLE_RATE
        # frames whose mid time plus the look-ahead, and whose end, have been heard
        upto = max(0, min(int(np.floor((heard - self.lookahead_s) * self.fps - 0.5)) + 1,
                          int(np.floor(heard * self.fps + 1e-9))))
        return self._frames(upto if self._limit is None else min(upto, self._limit))

    def finish(self) -> np.ndarray:
        """The mouths of every frame not handed out yet: the sound has ended (silence follows)."""
        self._limit = audio_lib.frame_count(self.samples, self.fps) if self.samples else 0
        tail = np.zeros(int((self.lookahead_s + 2 / self.fps) * audio_lib.SAMPLE_RATE) + audio_lib.N_FFT, np.float32)
        return self.feed(tail)

    def _frames(self, upto: int) -> np.ndarray:
        first = self.frames_out
        if upto <= first:
            return np.zeros((0, self.dims.n_points, 2), np.float32)
        times = (np.arange(first, upto) + 0.5) / self.fps
        disp = self._model(times)
        drive = self._drive(times)
        raw = styled(self.person, disp, drive)
        both = np.concatenate([self._past_disp, raw])
        smooth = smoothing.gaussian(both, SMOOTH_SIGMA)[len(self._past_disp):]
        self._past_disp = both[-self._radius:]
        self.frames_out = upto
        out = placed(self.person, smooth, self._quiet(times))
        self._trim(times[-1])
        return out

    def _input(self, k: int, first: int, end: int) -> np.ndarray:
        """Model k's input rows for mel steps first .. end - 1; steps not heard yet hold the newest."""
        have = self._first + len(self._rows[k])
        rows = self._rows[k][max(first, self._first) - self._first:min(end, have) - self._first]
        if end > have:
            hold = rows[-1:] if len(rows) else np.full((1, self.dims.n_mels), -3.0, np.float32)
            rows = np.concatenate([rows, np.repeat(hold, end - max(have, first), axis=0)])
        if self._phones is not None:
            rows = np.concatenate([rows, self._phones.rows(first, end)], axis=1)
        return rows

    def _model(self, times: np.ndarray) -> np.ndarray:
        """The ensemble's mean output at `times`, as `SyncModel.mouths` samples it."""
        from .sync_model import MEL_PER_STEP, STEP_RATE, interpolate

        pos = times * STEP_RATE + self.dims.lookahead
        lo, hi = int(np.floor(pos[0])), int(np.floor(pos[-1])) + 1  # model steps read
        start = max(0, lo - (self.dims.receptive_steps - 1))
        outs = []
        for k, model in enumerate(self.models):
            x = self._input(k, start * MEL_PER_STEP, (hi + 1) * MEL_PER_STEP)
            y = model.forward_numpy(x)
            outs.append(interpolate(y, pos - start))
        return np.mean(outs, axis=0)

    def _drive(self, times: np.ndarray) -> np.ndarray:
        """The loudness drive (`features.mouth_drive`) of frames at `times`, from the sound so far."""
        centres = np.round((times + ENVELOPE_LEAD_S) * audio_lib.MEL_FRAMES_PER_SECOND).astype(int) - self._first
        level = audio_lib.window_means(self._band, centres, ENVELOPE_HALF_WIDTH_S) if len(self._band) else \
            np.full(len(times), -4.0, np.float32)
        self._frame_levels.add(level)
        span = self._frame_levels.span()
        drive = np.zeros(len(times), np.float32) if span is None else \
            np.clip((level - span[0]) / (span[1] - span[0]), 0.0, 1.0).astype(np.float32)
        both = np.concatenate([self._past_drive, drive])
        self._past_drive = both[-self._radius:]
        return smoothing.gaussian(both.astype(np.float64), DRIVE_SMOOTH_SIGMA)[-len(times):].astype(np.float32)

    def _quiet(self, times: np.ndarray) -> np.ndarray:
        """The pause rule (`sync_shape.pause_weights`) at `times` from the sound so far: 0 where the
        mouth rests. The kept steps may begin mid-pause, and the newest is not the sound's end."""
        span = self._step_levels.span()
        if span is None or not len(self._level):
            return np.zeros(len(times), np.float32)
        weight = pause_weights(quiet_steps(self._level, span), open_start=True, open_end=True)
        steps = np.round(times * audio_lib.MEL_FRAMES_PER_SECOND).astype(int) - self._first
        steps = np.minimum(steps, len(weight) - 1)
        return np.where(steps < 0, 1.0, weight[np.maximum(steps, 0)]).astype(np.float32)

    def _trim(self, t: float) -> None:
        """Forgets the steps that no frame after time `t` reads."""
        keep_from = int(t * audio_lib.MEL_FRAMES_PER_SECOND) - 2 * self.dims.receptive_steps - KEEP_STEPS
        cut = keep_from - self._first
        if cut > KEEP_STEPS:
            self._rows = [rows[cut:] for rows in self._rows]
            self._level, self._band = self._level[cut:], self._band[cut:]
            self._first += cut
