"""The default generator, `sync`: the TensorFlow sound-to-mouth model plus the mesh renderer.

Stage 1 (sound -> mouth): the temporal network of `lipsync.generators.sync_model` plans the
whole mouth (outer and inner lips) of every output frame from the sound alone, as a
displacement from the person's rest shape in units of their opening range; half of the
opening comes from the sound's loudness envelope. The input footage sets only that rest
shape and range; the timing and the shapes come from the sound. Over pauses of
`MIN_PAUSE_S` or more the mouth rests.

Personalization: when the input video has its own speech, the model is run on it (at most
`personalize_seconds` of it) and its output matched, coordinate by coordinate, to the mean
and spread of the person's real mouth (their typical width, rounding and range). The map is
the same for every frame, so it adapts the style and never the timing; the new mouth cannot
follow the old one. It is cached per input.

Stage 2 (mouth -> pixels): `lipsync.render.exemplar.ExemplarRenderer` draws every planned
shape with the person's own lower face in the closest shape the input showed (the mouth bank
collected while tracking), warped onto the planned landmarks; the jaw line follows; every
pixel above mid-nose stays as it was.
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
from ..face.landmarks import JAW, MOUTH, canonical_mouths, face_down, from_canonical, mouth_opening, to_canonical
from ..io import audio as audio_lib
from ..io.features import has_speech, mouth_drive
from ..progress import Progress
from ..render.exemplar import ExemplarRenderer
from ..render.mesh import MeshRenderer
from ..stages import MouthRenderer, SoundToMouth
from . import checkpoint as ckpt_lib
from . import geometry, visemes
from .base import Generator, Source
from .options import SyncOptions
from .geometry import calibrate, target_points, targets, uncross_lips
from .sync_live import LivePlan
from .sync_shape import SMOOTH_SIGMA, Person, placed, quiet_weight, styled

log = logging.getLogger(__name__)

MIN_PERSONAL_FRAMES = 50  # two seconds at 25 fps of the person speaking
STYLE_LIMITS = (0.67, 1.5)  # the personal map may scale a coordinate's spread by this much at most
STYLE_VERSION = 2  # part of the personal cache key
# The rest shape the plan starts from: the mean of the person's most closed frames. The model learnt its
# displacements from the 20th percentile (geometry.REST_PERCENTILE); starting from truly closed lips lets the
# mouth close on m/b/p and in pauses. Dub test means on the development clips, 20 / 5: closed-mouth F1 0.30 /
# 0.35, corr 0.40 / 0.40, lmd 5.3 / 5.3 (speech, exemplar renderer).
CLOSED_PERCENTILE = 5


def load_models(path: Optional[str] = None):
    """(dims, models, path) of a checkpoint; loaded once per process while the file is unchanged
    (a batch of jobs loads the weights once). The models are shared: callers must not change them."""
    path = path or ckpt_lib.default_checkpoint()
    return (*_load_models(path, cache.file_stamp(path)), path)


@functools.lru_cache(maxsize=1)
def _load_models(path: str, stamp) -> tuple:
    return ckpt_lib.build_models(ckpt_lib.load(path), path)  # a missing file raises: nothing is memoised


def model_mouths(models: list, wav: np.ndarray, mel: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The ensemble's mean output (len(times), 20, 2), in range units, for 16 kHz sound and its
    raw (80, T) log-mel (the phones heard are recognised when a model reads them)."""
    track = visemes.hear(wav, mel.shape[1]) if any(m.dims.visemes for m in models) else None
    return np.mean([m.mouths(mel, times, track) for m in models], axis=0)


def fit_style(predicted: np.ndarray, real: np.ndarray) -> np.ndarray:
    """(2, 20, 2) scale and shift that give the model's output on a person's own speech the mean
    and spread of their real mouth (both (n, 20, 2) in range units, frames with a face)."""
    p_mean, p_std = predicted.mean(0), predicted.std(0) + 1e-4
    r_mean, r_std = real.mean(0), real.std(0)
    scale = np.clip(r_std / p_std, *STYLE_LIMITS)
    return np.stack([scale, r_mean - scale * p_mean]).astype(np.float32)


def _personal_cache_path(video_digest: str, checkpoint_path: str, fps: float, track: np.ndarray, seconds: float) -> str:
    return cache.entry_path("personal", video_digest, cache.file_digest(checkpoint_path),
                            f"{fps:.4f}", STYLE_VERSION, track.tobytes(), f"{seconds:.3f}")


def _cached_style(arrays: dict) -> np.ndarray:
    style = arrays["style"]
    if style.shape != (2, geometry.N_MOUTH, 2) or not np.isfinite(style).all():
        raise ValueError(f"a style of shape {style.shape}")
    return style


def prepare_person(source: Source, settings: SyncOptions, progress: Progress = Progress()) -> Person:
    """The rest shape, the opening range and (with the person's own speech) the personal style."""
    mode, track = settings.personalize, source.smooth.landmarks
    _, models, checkpoint_path = load_models(settings.checkpoint_path)
    calibration = calibrate(source.track.openings)
    opens = source.smooth.openings
    valid = ~np.isnan(opens)
    if source.is_image or valid.sum() < 25:  # too few frames to know the rest shape: close this frame's mouth
        first = track[np.flatnonzero(valid)[0]]
        rest = to_canonical(target_points(first, calibration.rest))
    else:
        rest = geometry.rest_shape(canonical_mouths(track), opens, CLOSED_PERCENTILE)
    person = Person(rest, models, calibration.peak - calibration.rest)
    if mode == "off":
        return person
    reason = None
    if source.is_image:
        reason = "a photo has no speech of its own"
    elif not source.has_audio:
        reason = "the video has no sound track"
    elif valid.sum() < MIN_PERSONAL_FRAMES:
        reason = f"only {int(valid.sum())} frames with a face (needs {MIN_PERSONAL_FRAMES})"
    if reason is None:
        own = source.own_sound(settings.personalize_seconds)
        mel = audio_lib.melspectrogram(own)
        if not has_speech(mel):
            reason = "its sound has no speech"
    if reason is not None:
        if mode == "on":
            raise InputError(f"{source.path}: cannot personalize: {reason}")
        log.debug("not personalizing: %s", reason)
        return person
    path = _personal_cache_path(source.digest, checkpoint_path, source.fps, track, settings.personalize_seconds) \
        if settings.use_cache else None
    style = cache.load(path, _cached_style) if path else None
    if style is not None:
        log.debug("personal style from cache %s", path)
        return dataclasses.replace(person, style=style, personal=True)
    start = time.time()
    with progress.stage("personalizing", 1, unit="clip") as bar:
        n = min(len(track), audio_lib.frame_count(len(own), source.fps))
        times = (np.arange(n) + 0.5) / source.fps
        speaking = (quiet_weight(mel, times) > 0.5) & valid[:n]
        predicted = model_mouths(models, own, mel, times)[speaking]
        real = targets(canonical_mouths(track[:n]))[speaking]
        style = fit_style(predicted, real)
        bar.update(1)
    log.debug("personal style from %d frames in %.1f s", int(speaking.sum()), time.time() - start)
    if path:
        cache.save(path, {"style": style}, compress=False)
    return dataclasses.replace(person, style=style, personal=True)


class SyncShapes(SoundToMouth):
    """Plans the canonical mouth (float32 (n, 20, 2)) of every output frame from the sound alone."""

    def __init__(self, person: Person):
        self.person = person

    def plan(self, wav: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
        return plan_mouths(self.person, wav, fps, n_frames)

    def stream(self, fps: float, lookahead_s: Optional[float] = None):
        """The causal planner of a stream (`sync_live.LivePlan`), waiting `lookahead_s` of sound
        after each frame (None: all the model reads, about 0.26 s)."""
        return LivePlan(self.person, fps, lookahead_s)


def plan_mouths(person: Person, wav: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """Canonical mouth (n_frames, 20, 2) for every output frame, from the sound alone.

    wav: float32 mono at 16 kHz (the sound to sync to). The model's output (range units) has
    its opening averaged with the loudness envelope, goes through the person's style map, keeps
    SHAPE_DETAIL of its lip shape beyond the opening, rests over pauses, and is scaled to the
    person's range.
    """
    mel = audio_lib.melspectrogram(wav)
    times = (np.arange(n_frames) + 0.5) / fps
    disp = styled(person, model_mouths(person.models, wav, mel, times), mouth_drive(wav, fps, n_frames, mel))
    return placed(person, smoothing.gaussian(disp, SMOOTH_SIGMA), quiet_weight(mel, times))


def target_landmarks(points: np.ndarray, mouth: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """The frame's landmarks (68, 2) with the mouth replaced by the canonical `mouth` (20, 2).

    The planned mouth is placed where this frame's upper lip sits relative to the rest shape
    (so head turns keep their place); its shape and opening are the plan's alone. The jaw
    follows the change in opening.
    """
    own = to_canonical(points)
    shift = (own[geometry.UPPER_LIP_TOP] - rest[geometry.UPPER_LIP_TOP]).mean(0)
    out = points.copy()
    out[MOUTH] = from_canonical(mouth + shift, points)
    out[JAW] = target_points(points, mouth_opening(out))[JAW]
    return uncross_lips(out, face_down(points))


class SyncGenerator(Generator):
    name = "sync"
    streams = True

    def check(self) -> None:
        """The weights are present and build into the networks (loaded once per process)."""
        load_models(self.settings.checkpoint_path)

    def stages(self, source: Source, progress: Progress) -> Tuple[SoundToMouth, MouthRenderer]:
        person = prepare_person(source, self.settings, progress)
        place = functools.partial(target_landmarks, rest=person.rest)
        bank = source.track.bank
        if bank is not None and len(bank) > 1:
            renderer = ExemplarRenderer(place, bank, source.track.exemplar, self.settings.pads)
        else:  # a photo (its one sample is the frame itself: bending it resamples it once), or a face too small
            renderer = MeshRenderer(place, source.track.exemplar, self.settings.pads)
        return SyncShapes(person), renderer
