"""Trains the sync model (sound -> mouth shape) from talking-face videos.

    lipsync-train --data ../shared/data/grid --out my_model.npz

Every clip is face-tracked (cached), its own sound turned into features and its mouth
into displacements from the person's rest shape. A clip whose sound and mouth are
clearly offset is shifted by that offset; a clip without speech is skipped. Training
writes `<out>` (weights, hyperparameters, optimiser state), `<out stem>.log.csv` (loss per
logged step) and `<out stem>_samples.png` (real vs predicted mouth opening per clip).
`--resume` continues an interrupted run from its last save.
"""
from __future__ import annotations

import csv
import dataclasses
import glob
import logging
import os
from typing import List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from ..eval import metrics
from ..io import audio as audio_lib
from . import checkpoint as ckpt_lib
from ..errors import InputError, LipSyncError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg")
SAVE_EVERY = 200
LOG_EVERY = 25


@dataclasses.dataclass
class Clip:
    name: str
    x: np.ndarray  # (n, window_steps, 80)
    y: np.ndarray  # (n, 20, 2)
    offset: int


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


def load_clip(path: str, window_steps: int, half: Optional[str] = None, quiet: bool = True) -> Optional[Clip]:
    """Training pairs of one video (None when it has no usable speech). half: None, "first"."""
    from ..face.track import TrackSettings, track_media
    from ..io.media import probe
    from ..progress import Progress
    from .features import has_speech
    from .sync import speech_offset, training_pairs

    info = probe(path)
    if not info.has_video or not info.has_audio:
        log.info("%s: skipped (needs both video and sound)", path)
        return None
    fps = float(info.fps or 25.0)
    track = track_media(info, fps, TrackSettings(), progress=Progress(quiet)).smoothed()
    mel = audio_lib.melspectrogram(audio_lib.load_audio(path))
    if half == "first":
        n = len(track) // 2
        track, mel = track.head(n), mel[:, :int(round(audio_lib.MEL_FRAMES_PER_SECOND * n / fps))]
    if not has_speech(mel) or track.valid.mean() < 0.5:
        log.info("%s: skipped (no speech or no face)", path)
        return None
    offset, lag, conf = speech_offset(track, mel, fps)
    x, y = training_pairs(track, mel, fps, window_steps, offset)
    log.info("%s: %d frames, sound-to-mouth lag %s (confidence %.2f), offset used %d", path, len(x), lag, conf, offset)
    return Clip(os.path.basename(path) + (" (first half)" if half else ""), x, y, offset)


def sample_sheet(models: list, clips: List[Clip], path: str) -> None:
    """Real (green) and predicted (red) mouth opening over time, one strip per clip."""
    import cv2

    from .sync_model import opening_of

    strip_h, width, margin = 90, 900, 4
    sheet = np.full((strip_h * len(clips), width, 3), 255, np.uint8)
    for k, clip in enumerate(clips):
        real = opening_of(clip.y)
        pred = opening_of(np.mean([m.predict(clip.x) for m in models], axis=0))
        lo, hi = min(real.min(), pred.min()), max(real.max(), pred.max()) + 1e-6
        top = k * strip_h
        for values, colour in ((real, (60, 160, 60)), (pred, (40, 40, 220))):
            xs = np.linspace(margin, width - margin, len(values))
            ys = top + strip_h - margin - (values - lo) / (hi - lo) * (strip_h - 3 * margin - 12)
            cv2.polylines(sheet, [np.stack([xs, ys], 1).astype(np.int32)], False, colour, 1, cv2.LINE_AA)
        r = metrics.pearson(pred, real)
        cv2.putText(sheet, f"{clip.name}  corr {r:.2f}", (margin, top + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        cv2.line(sheet, (0, top), (width, top), (200, 200, 200), 1)
    from ..io.media import write_file

    ok, data = cv2.imencode(".png", sheet)
    if not ok:
        raise LipSyncError(f"{path}: could not encode the sample sheet")
    write_file(path, data.tobytes())


def train(*, data: Sequence[str] = (), data_first_half: Sequence[str] = (), out: str, steps: int = 800,
          members: int = 3, resume: bool = False, seed: int = 0, quiet: bool = False) -> str:
    """Trains (or resumes) an ensemble of `members` networks for `steps` steps each; returns `out`."""
    from .sync_model import ModelDimensions, SyncModel, TrainConfig, Trainer

    dims = ModelDimensions()
    existing = None
    if resume and os.path.exists(out):
        existing = ckpt_lib.load(out)
        dims, _ = ckpt_lib.build_models(existing, out)
    jobs = [(p, None) for p in find_videos(data)] + [(p, "first") for p in find_videos(data_first_half)]
    if not jobs:
        raise InputError("no training videos given: give video files or folders of them")
    clips = [c for c in (load_clip(p, dims.window_steps, half, quiet) for p, half in
                         tqdm(jobs, desc="reading clips", unit="clip", disable=quiet, leave=False)) if c is not None]
    if not clips:
        raise InputError("none of the training videos has both a face and speech")
    x = np.concatenate([c.x for c in clips])
    y = np.concatenate([c.y for c in clips])
    log.info("%d clips, %d frames", len(clips), len(x))
    stem = os.path.splitext(out)[0]
    log_path = stem + ".log.csv"
    info = {"clips": [c.name for c in clips], "frames": int(len(x)), "steps": steps, "seed": seed,
            "offsets": {c.name: c.offset for c in clips}}
    models, trainers = [], []
    for k in range(members):
        model = SyncModel(dims, existing.members[k] if existing and k < len(existing.members) else None, seed + k)
        trainer = Trainer(model, TrainConfig(seed=seed + k))
        if existing and k < len(existing.optimiser):
            trainer.load_state(existing.optimiser[k])
        models.append(model)
        trainers.append(trainer)
    done = sum(min(t.step, steps) for t in trainers)
    if not resume or not os.path.exists(log_path):
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(["member", "step", "loss"])

    def save() -> None:
        ckpt_lib.save(out, ckpt_lib.from_models(dims, models, info, [t.state() for t in trainers]))

    with tqdm(total=steps * members, initial=done, desc="training", unit="step", disable=quiet) as bar, \
            open(log_path, "a", newline="") as logf:
        writer = csv.writer(logf)
        for k, trainer in enumerate(trainers):
            recent = []
            for loss in trainer.run(x, y, max(0, steps - trainer.step)):
                recent.append(loss)
                bar.update(1)
                if trainer.step % LOG_EVERY == 0:
                    writer.writerow([k, trainer.step, f"{np.mean(recent):.5f}"])
                    logf.flush()
                    bar.set_postfix(loss=f"{np.mean(recent):.4f}")
                    recent = []
                if trainer.step % SAVE_EVERY == 0:
                    save()
    save()
    sample_sheet(models, clips, stem + "_samples.png")
    return out
