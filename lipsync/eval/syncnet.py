"""A small SyncNet-style judge: which offset of the sound goes with these mouth pixels?

Two encoders map five grey mouth crops (0.2 s at 25 fps) and the log-mel window around them
(0.2 s) to unit vectors; in sync, they point the same way. Trained contrastively on real
talking faces: each video window must pick its own sound among the sounds 15 frames either
side, which is the offset task itself (Chung & Zisserman's SyncNet trains the same idea with
a margin loss). The judge never sees the toolkit's outputs or its sound-to-mouth model.

Shapes: crops (n, 112, 112) uint8 as avsync.face_crops makes them at 25 fps; mel (80, m).
"""
from __future__ import annotations

import functools
from typing import Dict, Optional

import numpy as np

from ..backends import quiet_tensorflow
from ..io.assets import asset_file
from .asd import FPS  # the judge reads the speaking scorer's crops, at its rate
CONTEXT = 5  # video frames per window
MEL_STEPS = 16  # log-mel steps per window (0.2 s)
MOUTH_ROWS, MOUTH_COLS = slice(44, 108), slice(16, 96)  # the mouth in a scorer crop
MOUTH_SIZE = (40, 32)  # width, height fed to the network
EMBED = 128
CHUNK = 1500  # frames whose mouth windows are built at once
WEIGHTS = "sync_judge.npz"


def mouth_windows(crops: np.ndarray) -> np.ndarray:
    """(n, 32, 40, 5) float32: each frame's mouth with its two neighbours either side, each
    window standardised (lighting and contrast drop out); the clip's ends repeat."""
    import cv2

    mouths = np.stack([cv2.resize(c[MOUTH_ROWS, MOUTH_COLS], MOUTH_SIZE, interpolation=cv2.INTER_AREA)
                       for c in crops]).astype(np.float32) if len(crops) else np.zeros((0, 32, 40), np.float32)
    half = CONTEXT // 2
    padded = np.concatenate([mouths[:1].repeat(half, 0), mouths, mouths[-1:].repeat(half, 0)]) if len(mouths) else mouths
    win = np.stack([padded[i:i + len(mouths)] for i in range(CONTEXT)], axis=-1)
    mean = win.mean(axis=(1, 2, 3), keepdims=True)
    std = win.std(axis=(1, 2, 3), keepdims=True) + 1.0
    return ((win - mean) / std).astype(np.float32)


def sound_windows(wav: np.ndarray, n_frames: int, mel: Optional[np.ndarray] = None) -> np.ndarray:
    """(n_frames, 16, 80) float32: the normalised log-mel around each 25 fps frame (`mel`: the
    sound's log-mel, when the caller has it)."""
    from ..io.features import feature_windows, normalise_mel
    from ..io import audio as audio_lib

    mel = audio_lib.melspectrogram(wav) if mel is None else mel
    return feature_windows(normalise_mel(mel), FPS, n_frames, MEL_STEPS)


def build(seed: int = 0):
    """(visual encoder, audio encoder) Keras models, outputs L2-normalised (n, 128)."""
    tf = quiet_tensorflow()

    tf.random.set_seed(seed)
    L = tf.keras.layers

    def conv(x, filters, pool):
        x = L.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
        return L.MaxPool2D(pool)(x) if pool else x

    def head(x):
        x = L.GlobalAveragePooling2D()(x)
        x = L.Dense(EMBED)(x)
        return L.UnitNormalization()(x)

    v_in = tf.keras.Input((MOUTH_SIZE[1], MOUTH_SIZE[0], CONTEXT))
    v = conv(v_in, 32, 2)
    v = conv(v, 64, 2)
    v = conv(v, 96, 2)
    v = conv(v, 128, None)
    a_in = tf.keras.Input((MEL_STEPS, 80))  # the mel bands are the channels of a 1-D convolution over time
    a = a_in
    for filters, pool in ((128, False), (128, True), (128, True), (128, False)):
        a = L.Conv1D(filters, 3, padding="same", use_bias=False)(a)
        a = L.ReLU()(L.BatchNormalization()(a))
        a = L.MaxPool1D(2)(a) if pool else a
    a = L.Dense(EMBED)(L.GlobalAveragePooling1D()(a))
    return tf.keras.Model(v_in, head(v), name="visual"), tf.keras.Model(a_in, L.UnitNormalization()(a), name="audio")


class SyncJudge:
    """The trained encoders, and the offset search over them."""

    def __init__(self, weights: Optional[Dict[str, np.ndarray]] = None, seed: int = 0):
        tf = quiet_tensorflow()

        self.visual, self.audio = build(seed)
        if weights is not None:
            for model in (self.visual, self.audio):
                model.set_weights([weights[f"{model.name}_{i}"] for i in range(len(model.weights))])
        self._v = tf.function(lambda x: self.visual(x, training=False), reduce_retracing=True)
        self._a = tf.function(lambda x: self.audio(x, training=False), reduce_retracing=True)

    def get_weights(self) -> Dict[str, np.ndarray]:
        return {f"{m.name}_{i}": w for m in (self.visual, self.audio) for i, w in enumerate(m.get_weights())}

    def embed_video(self, windows: np.ndarray, batch: int = 256) -> np.ndarray:
        out = [self._v(windows[i:i + batch]).numpy() for i in range(0, len(windows), batch)]
        return np.concatenate(out) if out else np.zeros((0, EMBED), np.float32)

    def embed_sound(self, windows: np.ndarray, batch: int = 256) -> np.ndarray:
        out = [self._a(windows[i:i + batch]).numpy() for i in range(0, len(windows), batch)]
        return np.concatenate(out) if out else np.zeros((0, EMBED), np.float32)

    def shift_scores(self, crops: np.ndarray, wav: np.ndarray, max_shift: int = 15,
                     face: Optional[np.ndarray] = None, mel: Optional[np.ndarray] = None) -> Dict[int, float]:
        """Mean cosine of each frame's mouth with the sound k frames later, k in -max_shift..max_shift
        (fewer on short clips: at most a quarter of their frames), judged on the same frames for
        every k (and only on frames with a face, where `face` says). {} when too short or faceless."""
        n = len(crops)
        max_shift = max(1, min(max_shift, n // 4))
        frames = np.arange(max_shift, n - max_shift)
        if face is not None:
            frames = frames[np.asarray(face, bool)[frames]]
        if len(frames) < 3:
            return {}
        video = np.concatenate([self.embed_video(mouth_windows(crops[max(0, i - 2):i + CHUNK + 2]))[min(i, 2):][:CHUNK]
                                for i in range(0, n, CHUNK)])  # in chunks: memory stays flat on long videos
        sound = self.embed_sound(sound_windows(wav, n, mel))
        return {k: float(np.mean(np.sum(video[frames] * sound[frames + k], axis=1)))
                for k in range(-max_shift, max_shift + 1)}


@functools.lru_cache(maxsize=1)
def load_judge() -> SyncJudge:
    """The shipped judge (lipsync/assets/sync_judge.npz), loaded once per process."""

    with asset_file(WEIGHTS) as path, np.load(path) as data:
        return SyncJudge({k: data[k] for k in data.files})
