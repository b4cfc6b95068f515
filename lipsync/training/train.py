"""Trains the sync model (sound -> whole mouth) from talking-face videos.

    lipsync-train --data ../shared/data/train ../shared/data/grid --holdout SPEAKER ... --out my_model.npz

Every clip is read by `lipsync.training.dataset.read_clip` (face-tracked, its sound put in
sync with its picture, cached). Its mouth becomes a displacement from the person's rest
shape in units of their own opening range, so that every speaker's targets share one
scale. Training draws 3.2 s sequences from augmented copies of every clip:

- tempo (0.85-1.15, sound and mouth together) and a stretch of the mel axis (0.92-1.08,
  another vocal tract), background noise at 5-30 dB below the speech, and some copies
  normalised the way a stream is (statistics so far) instead of over the whole clip;
- mirrored faces (left and right lip points swapped).

Clips whose names contain a `--holdout` string are never trained on; the model is
measured on them (opening correlation and closed-mouth F1 of the predicted mouth against
the real one) every `--eval_every` steps. Training writes `<out>` (weights,
hyperparameters, optimiser state, the figures), `<out stem>.log.csv` and
`<out stem>_samples.png` (real vs predicted opening of the held-out clips, else of the first training clips). `--resume`
continues an interrupted run from its last save.
"""
from __future__ import annotations

import csv
import dataclasses
import glob
import logging
import os
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from ..backends import quiet_tensorflow
from ..errors import InputError, LipSyncError
from ..eval import metrics
from ..generators import checkpoint as ckpt_lib
from ..generators.geometry import opening_of, targets

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg")
SAVE_EVERY = 250
LOG_EVERY = 25
MIRROR = np.array([6, 5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 16, 15, 14, 13, 12, 19, 18, 17])  # left <-> right lip points
N_VARIANTS = 6  # augmented copies of every clip
TEMPO = (0.85, 1.15)
MEL_STRETCH = (0.92, 1.08)
NOISE_DB = (5.0, 30.0)  # noise this far below the speech's loud moments
DB_PER_UNIT = 12.5  # the normalised log-mel's units (8 units span 100 dB)
WARMUP_STEPS = 16  # model steps at the start of a sequence cut from mid-clip that carry no loss (no past)
TIME_MASK = 8  # mel steps, at most, per mask
BAND_MASK = 8  # mel bands, at most, per mask
MAX_CLIP_WEIGHT_S = 30.0  # a long clip is drawn no more often than a 30 s one


@dataclasses.dataclass
class Prepared:
    """One clip ready for training: normalised sound, targets per model step, a mask."""

    name: str
    x: np.ndarray  # float32 (T, 80) normalised log-mel
    y: np.ndarray  # float32 (T // 2, 20, 2) targets at model steps
    mask: np.ndarray  # float32 (T // 2,)


def find_videos(paths: Sequence[str]) -> List[str]:
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(f for f in glob.glob(os.path.join(p, "*")) if f.lower().endswith(VIDEO_EXTENSIONS))
        elif os.path.exists(p):
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    return out


def at_steps(frames: np.ndarray, fps: float, n_steps: int, tempo: float = 1.0) -> np.ndarray:
    """Per-frame values (n, ...) at model steps 0 .. n_steps - 1 of a sound played `tempo` times
    faster; NaN where a neighbouring frame is NaN or past the clip."""
    from ..generators.sync_model import STEP_RATE, interpolate

    t = (np.arange(n_steps) + 0.25) / STEP_RATE * tempo  # a model step's centre time in the original clip
    pos = t * fps - 0.5  # frame i shows time (i + 0.5) / fps
    out = interpolate(frames, pos)
    out[(pos < 0) | (np.floor(pos) + 1 >= len(frames))] = np.nan
    return out


def augment_mel(mel: np.ndarray, rng: np.random.Generator, tempo: float, stretch: float,
                noise_db: Optional[float]) -> np.ndarray:
    """A raw (80, T) log-mel played `tempo` times faster, its mel axis stretched, with noise."""
    n_mels, n = mel.shape
    out = mel
    if tempo != 1.0:
        src = np.arange(int(n / tempo)) * tempo
        out = np.stack([np.interp(src, np.arange(n), row) for row in out])
    if stretch != 1.0:
        bands = np.clip(np.arange(n_mels) / stretch, 0, n_mels - 1)
        out = np.stack([np.interp(bands, np.arange(n_mels), col) for col in out.T], axis=1)
    if noise_db is not None:
        loud = np.percentile(out.mean(0), 95)
        tilt = rng.uniform(-1.0, 0.5) * np.linspace(-1, 1, n_mels)[:, None]  # pinkish to whitish
        level = loud - noise_db / DB_PER_UNIT + tilt
        noise = level + rng.normal(0, 2.0 / DB_PER_UNIT * 4, (n_mels, out.shape[1]))
        # add powers: 10 ** (units * 12.5 / 10)
        k = DB_PER_UNIT / 10 * np.log(10)
        out = np.logaddexp(out * k, noise * k) / k
    return np.clip(out, -4.0, 4.0).astype(np.float32)


def running_normalise(mel: np.ndarray, prior_mean: np.ndarray, prior_std: np.ndarray) -> np.ndarray:
    """(80, T) -> (T, 80) normalised with the statistics of the sound so far (as a stream is)."""
    from ..generators.sync_model import SpeakerNorm

    return SpeakerNorm(prior_mean, prior_std).running(mel)


def prepare(clip, model, rng: np.random.Generator, augmented: bool) -> Prepared:
    """A clip (dataset.ClipData) as (normalised sound, targets, mask), augmented or as it is."""
    from ..generators.sync_model import MEL_PER_STEP

    tempo, stretch, noise, running = 1.0, 1.0, None, False
    if augmented:
        tempo = float(rng.uniform(*TEMPO))
        stretch = float(rng.uniform(*MEL_STRETCH))
        noise = float(rng.uniform(*NOISE_DB)) if rng.random() < 0.5 else None
        running = rng.random() < 0.3
    mel = augment_mel(clip.mel, rng, tempo, stretch, noise)
    x = running_normalise(mel, model.mel_mean, model.mel_std) if running else model.norm(mel)(mel)
    if model.dims.visemes:
        track = clip.visemes
        x = np.concatenate([x, track[np.minimum(len(track) - 1, (np.arange(len(x)) * tempo).astype(int))]], axis=1)
    n_steps = mel.shape[1] // MEL_PER_STEP
    y = at_steps(targets(clip.mouths), clip.fps, n_steps, tempo)
    mask = (~np.isnan(y[:, 0, 0])).astype(np.float32)
    return Prepared(clip.name, x, np.nan_to_num(y), mask)


def mel_statistics(clips: list) -> tuple:
    """Per-band mean and spread of the sounding steps of all clips: the normalisation prior."""
    from ..generators.sync_model import SpeakerNorm

    m = np.concatenate([c.mel[:, SpeakerNorm.sounding(c.mel)] for c in clips], axis=1)
    return m.mean(1).astype(np.float32), m.std(1).astype(np.float32)


class Batches:
    """Random training sequences of the prepared clips: (x (B, 2S, 80), y (B, S, 20, 2), mask (B, S))."""

    def __init__(self, prepared: List[Prepared], lookahead: int, chunk: int, batch: int, seed: int, n_mels: int,
                 silence):
        self.items, self.lookahead, self.chunk, self.batch, self.n_mels = prepared, lookahead, chunk, batch, n_mels
        self.rng = np.random.default_rng(seed)
        seconds = np.array([min(len(p.y) / 40.0, MAX_CLIP_WEIGHT_S) for p in prepared])
        self.p = seconds / seconds.sum()
        self.silence = {id(p): silence(p.x) for p in prepared}  # the input row of each clip's silence

    def __call__(self):
        from ..generators.sync_model import MEL_PER_STEP

        S, L = self.chunk, self.lookahead
        xs = np.empty((self.batch, S * MEL_PER_STEP, self.items[0].x.shape[1]), np.float32)
        ys = np.zeros((self.batch, S, 20, 2), np.float32)
        ms = np.zeros((self.batch, S), np.float32)
        for b in range(self.batch):
            item = self.items[self.rng.choice(len(self.items), p=self.p)]
            n = len(item.y)
            a = int(self.rng.integers(-S // 4, max(1, n - S // 2)))  # first model step of the input
            xs[b] = self.silence[id(item)]
            lo, hi = max(a, 0), min(a + S, n)
            xs[b, (lo - a) * MEL_PER_STEP:(hi - a) * MEL_PER_STEP] = item.x[lo * MEL_PER_STEP:hi * MEL_PER_STEP]
            # output j is the mouth at step a + j - L
            j = np.arange(S)
            src = a + j - L
            ok = (src >= 0) & (src < n) & (src < hi)
            ys[b, ok] = item.y[src[ok]]
            ms[b, ok] = item.mask[src[ok]]
            if a > 0:
                ms[b, :WARMUP_STEPS] = 0
            for _ in range(2):  # masks: a stretch of sound and a band of frequencies read as the speaker's mean
                t0 = int(self.rng.integers(0, S * MEL_PER_STEP))
                xs[b, t0:t0 + int(self.rng.integers(0, TIME_MASK + 1)), :self.n_mels] = 0.0
                f0 = int(self.rng.integers(0, self.n_mels))
                xs[b, :, f0:min(self.n_mels, f0 + int(self.rng.integers(0, BAND_MASK + 1)))] = 0.0
            if self.rng.random() < 0.5:  # mirrored face
                ys[b] = ys[b][:, MIRROR] * np.array([-1, 1], np.float32)
        return xs, ys, ms


def validate(models: list, clips: list) -> Dict[str, Dict[str, float]]:
    """Per held-out clip: correlation of predicted and real inner-lip opening, closed-mouth F1
    (the dub test's rule), at the clip's video frames."""
    out = {}
    for clip in clips:
        times = (np.arange(len(clip.mouths)) + 0.5) / clip.fps
        pred = opening_of(np.mean([m.mouths(clip.mel, times, clip.visemes) for m in models], axis=0))
        real = opening_of(targets(clip.mouths))
        ok = ~np.isnan(real)
        out[clip.name] = {"corr": metrics.pearson(pred[ok], real[ok]),
                          "closed_f1": metrics.closed_f1(pred[ok], real[ok])}
    return out


def sample_sheet(models: list, clips: list, path: str) -> None:
    """Real (green) and predicted (red) mouth opening over time, one strip per clip."""
    import cv2

    from ..io.files import write_file
    strip_h, width, margin = 90, 1200, 4
    sheet = np.full((strip_h * max(1, len(clips)), width, 3), 255, np.uint8)
    for k, clip in enumerate(clips):
        times = (np.arange(len(clip.mouths)) + 0.5) / clip.fps
        pred = opening_of(np.mean([m.mouths(clip.mel, times, clip.visemes) for m in models], axis=0))
        real = np.nan_to_num(opening_of(targets(clip.mouths)))
        lo, hi = min(real.min(), pred.min()), max(real.max(), pred.max()) + 1e-6
        top = k * strip_h
        for values, colour in ((real, (60, 160, 60)), (pred, (40, 40, 220))):
            xs = np.linspace(margin, width - margin, len(values))
            ys = top + strip_h - margin - (values - lo) / (hi - lo) * (strip_h - 3 * margin - 12)
            cv2.polylines(sheet, [np.stack([xs, ys], 1).astype(np.int32)], False, colour, 1, cv2.LINE_AA)
        cv2.putText(sheet, f"{clip.name}  corr {metrics.pearson(pred, real):.2f}", (margin, top + 14),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        cv2.line(sheet, (0, top), (width, top), (200, 200, 200), 1)
    ok, data = cv2.imencode(".png", sheet)
    if not ok:
        raise LipSyncError(f"{path}: could not encode the sample sheet")
    write_file(path, data.tobytes())


def train(*, data: Sequence[str] = (), holdout: Sequence[str] = (), out: str, steps: int = 600, members: int = 3,
          lookahead: Optional[int] = None, eval_every: int = 500, resume: bool = False, seed: int = 0,
          dims=None, quiet: bool = False) -> str:
    """Trains (or resumes) an ensemble of `members` models (seeds seed, seed + 1, ...) for `steps`
    steps each on the clips of `data` whose names contain none of the `holdout` strings;
    returns `out`."""
    quiet_tensorflow()
    from ..generators.sync_model import ModelDimensions, SyncModel, TrainConfig, Trainer
    from .dataset import read_clip

    dims = dims or ModelDimensions()
    if lookahead is not None:
        dims = dataclasses.replace(dims, lookahead=lookahead)
    existing = None
    if resume and os.path.exists(out):
        existing = ckpt_lib.load(out)
        dims, _ = ckpt_lib.build_models(existing, out)
    paths = find_videos(data)
    if not paths:
        raise InputError("no training videos given: give video files or folders of them")
    clips = [c.in_sync() for c in (read_clip(p, quiet) for p in tqdm(paths, desc="reading clips", unit="clip",
                                                                     disable=quiet, leave=False)) if c is not None]
    held = [c for c in clips if any(h in c.name for h in holdout)]
    train_clips = [c for c in clips if c not in held]
    if not train_clips:
        raise InputError("none of the training videos has both a face and speech (or all are held out)")
    models, trainers = [], []
    for k in range(members):
        model = SyncModel(dims, existing.members[k] if existing and k < len(existing.members) else None, seed + k)
        if not existing:
            model.mel_mean, model.mel_std = mel_statistics(train_clips)
        trainer = Trainer(model, TrainConfig(seed=seed + k), total_steps=steps)
        if existing and k < len(existing.optimiser):
            trainer.load_state(existing.optimiser[k])
        models.append(model)
        trainers.append(trainer)
    rng = np.random.default_rng(seed)
    prepared = [prepare(c, models[0], rng, augmented=False) for c in train_clips]
    prepared += [prepare(c, models[0], rng, augmented=True) for c in train_clips for _ in range(N_VARIANTS - 1)]
    frames = int(sum(len(c.mouths) for c in train_clips))
    info = {"clips": [c.name for c in train_clips], "held_out": [c.name for c in held], "frames": frames,
            "offsets": {c.name: c.offset for c in clips}, "steps": steps, "seed": seed,
            "validation": existing.info.get("validation", {}) if existing else {}}
    log.info("%d training clips (%d frames), %d held out; %d members of %d parameters", len(train_clips), frames,
             len(held), members, models[0].n_parameters)
    stem = os.path.splitext(out)[0]
    log_path = stem + ".log.csv"
    if not resume or not os.path.exists(log_path):
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(["member", "step", "loss", "seconds"])

    def save() -> None:
        ckpt_lib.save(out, ckpt_lib.from_models(dims, models, info, [t.state() for t in trainers]))

    def measure(label: str, ensemble: list) -> None:
        figures = validate(ensemble, held)
        info["validation"][label] = figures
        mean = {k: float(np.nanmean([f[k] for f in figures.values()])) for k in ("corr", "closed_f1")}
        log.info("%s: held-out corr %.3f, closed F1 %.3f", label, mean["corr"], mean["closed_f1"])

    start = time.time()
    done = sum(min(t.step, steps) for t in trainers)
    with tqdm(total=steps * members, initial=done, desc="training", unit="step", disable=quiet) as bar, \
            open(log_path, "a", newline="") as logf:
        writer = csv.writer(logf)
        for k, (model, trainer) in enumerate(zip(models, trainers)):
            batches = Batches(prepared, dims.lookahead, trainer.config.chunk_steps, trainer.config.batch_size,
                              seed + k + trainer.step, dims.n_mels, model.silence)
            recent = []
            while trainer.step < steps:
                recent.append(trainer.train_step(*batches()))
                bar.update(1)
                if trainer.step % LOG_EVERY == 0:
                    writer.writerow([k, trainer.step, f"{np.mean(recent):.5f}", f"{time.time() - start:.0f}"])
                    logf.flush()
                    bar.set_postfix(loss=f"{np.mean(recent):.4f}")
                    recent = []
                if held and (trainer.step % eval_every == 0 or trainer.step == steps):
                    measure(f"member {k} step {trainer.step}", [model])
                if trainer.step % SAVE_EVERY == 0:
                    save()
        if held and members > 1:
            measure("ensemble", models)
    save()
    sample_sheet(models, held or train_clips[:8], stem + "_samples.png")
    return out
