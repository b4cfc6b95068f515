"""The default generator, `sync`: the TensorFlow sound-to-shape model plus the mesh renderer.

Stage 1 (sound -> mouth shape): an ensemble of small TensorFlow networks
(`lipsync.generators.sync_model`) predicts, for each output frame, the 20 mouth landmarks as a
displacement from the person's rest shape in the canonical face frame. Their opening is
averaged (in standard units) with the loudness envelope of the same sound, the most
robust single cue when there is little training data (see MODEL_CARD.md for the figures).

Personalisation: when the input video has its own speech, each network is fine-tuned on
that person's (sound, mouth) pairs within a time budget, and the person's audio-to-mouth
timing is measured on the same pairs (a clear, strong peak of their lag correlation is
kept as the output's timing: the output moves the mouth the way this recording does).
The result is cached per input, so the next run with new audio starts at once.

Stage 2 (mouth shape -> pixels): `lipsync.render.mesh.MeshRenderer` moves the lips and jaw
to the predicted shape with a piecewise-affine mesh and fills the opened mouth with the
person's own mouth interior; every pixel above mid-nose stays as it was.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
from typing import Optional, Tuple

import numpy as np

from .. import cache, smoothing
from ..errors import InputError
from ..eval import metrics
from ..face.landmarks import JAW, MOUTH, face_down, mouth_opening
from ..face.track import FaceTrack
from ..io import audio as audio_lib
from ..progress import Progress
from ..render.mesh import MeshRenderer
from . import checkpoint as ckpt_lib
from . import geometry
from .base import Generator, GeneratorSettings, MouthRenderer, Source, SoundToMouth
from .features import feature_windows, has_speech, mouth_drive, normalise_mel
from .geometry import OPEN_BASIS, calibrate, target_points, uncross_lips

log = logging.getLogger(__name__)

MIN_PERSONAL_FRAMES = 50  # two seconds at 25 fps of the person speaking
PERSONAL_STEPS = 150  # per ensemble member; a few seconds on two cores
PERSONAL_LEARNING_RATE = 3e-4
OFFSET_SEARCH = 10  # frames
OFFSET_MIN_CONFIDENCE = 0.35  # peak minus median lag correlation
OFFSET_MIN_CORR = 0.5
# Lags of 1-2 frames are within the estimate's noise on a few seconds of speech: in-sync studio clips (GRID)
# and retalk_1 (in sync over its whole length) measure -2..0 on their halves. Only larger ones are kept.
OFFSET_MIN_FRAMES = 3
SMOOTH_SIGMA = 0.8  # frames, on the predicted shapes
PEAK_PERCENTILE = 97  # the clip's loud moments: opening 1 on the person's scale
NETWORK_WEIGHT = 0.3  # share of the networks in the opening; the rest is the loudness envelope
PREDICT_BLOCK = 1500  # video frames whose sound features are built and predicted at once
SHAPE_WEIGHT = 0.3  # share of the model's lip shape against the frame's own (0, 0.15 and 0.5 measured: within noise or worse on lmd)


@dataclasses.dataclass
class Person:
    """What the sync model knows about the face in the input."""

    rest: np.ndarray  # (20, 2) canonical mouth at rest
    models: list  # SyncModel ensemble (personal or shipped)
    span: Tuple[float, float] = (0.0, 0.22)  # the person's inner-lip opening at rest and wide open
    offset: int = 0  # output frame i reads the sound around frame i + offset
    personal: bool = False


def load_models(path: Optional[str] = None):
    """(dims, models, path) of a checkpoint; loaded once per process while the file is unchanged
    (a batch of jobs loads the weights once). The models are shared: callers copy before
    changing them (as `personalize` does)."""
    path = path or ckpt_lib.default_checkpoint()
    return (*_load_models(path, cache.file_stamp(path)), path)


@functools.lru_cache(maxsize=1)
def _load_models(path: str, stamp) -> tuple:
    return ckpt_lib.build_models(ckpt_lib.load(path), path)  # a missing file raises: nothing is memoised


def training_pairs(track: FaceTrack, mel: np.ndarray, fps: float, steps: int, offset: int = 0,
                   rest: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(features (n, steps, 80), displacements (n, 20, 2)) for the frames of `track` with a face.

    track: the clip's face at `fps`; mel: the clip's own (80, m) log-mel.
    """
    opens = track.openings
    mouths = geometry.canonical_mouths(track.landmarks)
    if rest is None:
        rest = geometry.rest_shape(mouths, opens)
    x = feature_windows(normalise_mel(mel), fps, len(track), steps, offset)
    ok = ~np.isnan(opens)
    return x[ok], (mouths - rest)[ok]


def speech_offset(track: FaceTrack, mel: np.ndarray, fps: float) -> Tuple[int, float, float]:
    """(offset kept, lag found, its confidence) between a clip's own sound and mouth.

    The offset is kept only for a clear, strong alignment of at least OFFSET_MIN_FRAMES; otherwise 0.
    """
    drive = mouth_drive(np.zeros(0, np.float32), fps, len(track), mel=mel)
    lag, corr, conf = metrics.best_lag(drive, track.openings, OFFSET_SEARCH)
    if lag is None:
        return 0, 0, 0.0
    clear = conf >= OFFSET_MIN_CONFIDENCE and corr >= OFFSET_MIN_CORR and abs(lag) >= OFFSET_MIN_FRAMES
    keep = lag if clear else 0
    return keep, lag, conf


def personalize(models: list, x: np.ndarray, y: np.ndarray, budget_s: float, progress: Progress = Progress()) -> list:
    """Fine-tuned copies of `models` on one person's pairs, within `budget_s` seconds."""
    from .sync_model import TrainConfig, Trainer

    start = time.time()
    tuned = []
    total = PERSONAL_STEPS * len(models)
    with progress.stage("personalizing", total, unit="step") as bar:
        for k, model in enumerate(models):
            copy = model.copy(seed=k)
            trainer = Trainer(copy, TrainConfig(learning_rate=PERSONAL_LEARNING_RATE, seed=k))
            share = (budget_s - (time.time() - start)) / (len(models) - k)
            member_start = time.time()
            for _ in trainer.run(x, y, PERSONAL_STEPS):
                bar.update(1)
                if time.time() - member_start > share:
                    log.warning("personalization budget reached: member %d stopped at step %d", k, trainer.step)
                    break
            tuned.append(copy)
    return tuned


def _personal_cache_path(video_path: str, checkpoint_path: str, fps: float, track: np.ndarray) -> str:
    return cache.entry_path("personal", cache.file_digest(video_path), cache.file_digest(checkpoint_path),
                            f"{fps:.4f}", PERSONAL_STEPS, PERSONAL_LEARNING_RATE, track.tobytes())


def prepare_person(source: Source, settings: GeneratorSettings, progress: Progress = Progress()) -> Person:
    """The rest shape, the (personal) models and the timing for the face in the input."""
    mode, track = settings.personalize, source.smooth.landmarks
    dims, models, checkpoint_path = load_models(settings.checkpoint_path)
    calibration = calibrate(source.track.openings)
    span = (calibration.rest, calibration.peak)
    opens = source.smooth.openings
    valid = ~np.isnan(opens)
    if source.is_image or valid.sum() < 25:  # too few frames to know the rest shape: close this frame's mouth
        first = track[np.flatnonzero(valid)[0]]
        rest = geometry.to_canonical(target_points(first, span[0]))
    else:
        rest = geometry.rest_shape(geometry.canonical_mouths(track), opens)
    person = Person(rest, models, span)
    if mode == "off":
        return person
    reason = None
    if source.is_image:
        reason = "a photo has no speech of its own"
    elif not source.has_audio:
        reason = "the video has no sound track"
    elif valid.sum() < MIN_PERSONAL_FRAMES:
        reason = f"only {int(valid.sum())} frames with a face (needs {MIN_PERSONAL_FRAMES})"
    mel = None
    if reason is None:
        mel = audio_lib.melspectrogram(audio_lib.load_audio(source.path))
        if not has_speech(mel):
            reason = "its sound has no speech"
    if reason is not None:
        if mode == "on":
            raise InputError(f"{source.path}: cannot personalize: {reason}")
        log.debug("not personalizing: %s", reason)
        return person
    path = _personal_cache_path(source.path, checkpoint_path, source.fps, track) if settings.use_cache else None
    arrays = cache.load(path) if path else None
    if arrays is not None:
        try:
            ck = ckpt_lib.from_arrays(arrays, path)
            _, tuned = ckpt_lib.build_models(ck, path)
            log.debug("personal model from cache %s", path)
            return Person(rest, tuned, span, int(ck.info.get("offset", 0)), True)
        except Exception as exc:  # a stale or damaged cache entry is rebuilt
            log.warning("ignoring personal cache %s: %s", path, exc)
    offset, lag, conf = speech_offset(source.smooth, mel, source.fps)
    log.debug("own audio-to-mouth lag %s frames (confidence %.2f): timing offset %d", lag, conf, offset)
    x, y = training_pairs(source.smooth, mel, source.fps, dims.window_steps, offset, rest)
    tuned = personalize(models, x, y, settings.personalize_seconds, progress)
    if path:
        ck = ckpt_lib.from_models(dims, tuned, {"offset": offset, "source": source.path})
        cache.save(path, ckpt_lib.to_arrays(ck), compress=False)
    return Person(rest, tuned, span, offset, True)


class SyncShapes(SoundToMouth):
    """Plans the canonical mouth (float32 (n, 20, 2)) of every output frame from the sound alone."""

    def __init__(self, person: Person):
        self.person = person

    def plan(self, wav: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
        return plan_mouths(self.person, wav, fps, n_frames)


def plan_mouths(person: Person, wav: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """Canonical mouth (n_frames, 20, 2) for every output frame, from the sound alone.

    wav: float32 mono at 16 kHz (the sound to sync to). The networks' opening is measured
    from their own silence (0) to the clip's loud moments (1), averaged with the loudness
    envelope on the same scale, and mapped onto the person's own opening range; the
    networks' lip shape (width, rounding) is kept.
    """
    from .sync_model import opening_of

    mel = audio_lib.melspectrogram(wav)
    dims = person.models[0].dims
    norm = normalise_mel(mel)
    disp = np.empty((n_frames, dims.n_points, 2), np.float32)
    for first in range(0, n_frames, PREDICT_BLOCK):  # in blocks: memory stays flat for long sound
        n = min(PREDICT_BLOCK, n_frames - first)
        x = feature_windows(norm, fps, n, dims.window_steps, person.offset, start=first)
        disp[first:first + n] = np.mean([m.predict(x) for m in person.models], axis=0)
    silence = np.zeros((1, dims.window_steps, dims.n_mels), np.float32)
    disp = smoothing.gaussian(disp, SMOOTH_SIGMA)
    closed = float(opening_of(person.rest + np.mean([m.predict(silence) for m in person.models], axis=0))[0])
    net_open = opening_of(person.rest + disp)
    loud = float(np.percentile(net_open, PEAK_PERCENTILE))
    net_unit = np.clip((net_open - closed) / max(loud - closed, 1e-3), 0.0, 1.2) if loud - closed > 0.01 else \
        np.zeros(n_frames)
    envelope = mouth_drive(wav, fps, n_frames + max(0, person.offset), mel=mel)
    envelope = envelope[max(0, person.offset):][:n_frames] if person.offset >= 0 else \
        np.concatenate([np.full(-person.offset, envelope[0]), envelope])[:n_frames]
    unit = NETWORK_WEIGHT * net_unit + (1 - NETWORK_WEIGHT) * envelope
    rest_open, peak_open = person.span
    wanted = rest_open + (peak_open - rest_open) * unit
    disp = disp + (wanted - net_open)[:, None, None] * OPEN_BASIS
    return person.rest + disp


def target_landmarks(points: np.ndarray, mouth: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """The frame's landmarks (68, 2) with the mouth moved to the canonical `mouth` (20, 2).

    The wanted shape is placed where this frame's upper lip sits relative to the rest
    shape (so head turns keep their place) and mixed with the frame's own lip shape
    (`SHAPE_WEIGHT` of the model's); the opening is the model's. The jaw follows the
    change in opening.
    """
    from .sync_model import opening_of

    own = geometry.to_canonical(points)
    shift = (own[geometry.UPPER_LIP_TOP] - rest[geometry.UPPER_LIP_TOP]).mean(0)
    wanted = own + SHAPE_WEIGHT * (mouth + shift - own)
    wanted = wanted + (opening_of(mouth) - opening_of(wanted)) * OPEN_BASIS
    out = points.copy()
    out[MOUTH] = geometry.from_canonical(wanted, points)
    out[JAW] = target_points(points, mouth_opening(out))[JAW]
    return uncross_lips(out, face_down(points))


class SyncGenerator(Generator):
    name = "sync"

    def check(self) -> None:
        """The weights are present and build into the networks (loaded once per process)."""
        load_models(self.settings.checkpoint_path)

    def stages(self, source: Source, progress: Progress) -> Tuple[SoundToMouth, MouthRenderer]:
        person = prepare_person(source, self.settings, progress)
        renderer = MeshRenderer(lambda points, mouth: target_landmarks(points, mouth, person.rest),
                                source.track.exemplar, self.settings.pads)
        return SyncShapes(person), renderer
