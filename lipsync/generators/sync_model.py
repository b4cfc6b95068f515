"""The sync model: a small TensorFlow network from sound to mouth shape.

Input: for each video frame, a window of `window_steps` normalised log-mel steps centred
on the frame (see `lipsync.generators.features.feature_windows`), float32 (B, window_steps, n_mels).
Output: the frame's mouth as the displacement of its 20 landmarks from the person's rest
shape in the canonical face frame (`lipsync.generators.geometry`), float32 (B, 20, 2) in inter-ocular
units.

The network is a stack of 1-D convolutions over time (the mel bands are the channels),
then two dense layers: about 0.2 M parameters, a few milliseconds per hundred frames on a
CPU. Its hyperparameters are a `ModelDimensions`, stored in every checkpoint and used to
rebuild it. This module does no file I/O; see `lipsync.generators.checkpoint`.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, Iterator, Optional

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the terminal
# oneDNN's notice is printed whatever the log level; for a network this small its kernels gain nothing
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # no retracing notices: every ensemble member has its own graph

from ..face.landmarks import INNER_LIP_GAPS, MOUTH  # noqa: E402
from .geometry import N_MOUTH  # noqa: E402

TARGET_SCALE = 10.0  # the network sees displacements x10 (inter-ocular units are small)


@dataclasses.dataclass(frozen=True)
class ModelDimensions:
    n_mels: int = 80
    window_steps: int = 24  # mel steps (80 per second): 0.3 s of sound around each frame
    channels: int = 96
    hidden: int = 128
    level_steps: int = 7  # mel steps (+-0.04 s) whose level drives the opening path
    dropout: float = 0.3
    residual_penalty: float = 10.0
    n_points: int = N_MOUTH


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    learning_rate: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 1e-4
    opening_weight: float = 2.0  # extra weight on the inner-lip gaps, which the sync is judged by
    mel_jitter: float = 0.15  # random per-example gain/offset on the normalised mel
    seed: int = 0


_GAP_PAIRS = INNER_LIP_GAPS - MOUTH[0]  # the same pairs among the 20 mouth points


def build_network(dims: ModelDimensions, seed: int = 0) -> tf.keras.Model:
    """Two paths summed: the loudness of the frame's own moment of sound (the clip-normalised
    mel level over +-`level_steps`//2 steps, clipped to [0, 1]) drives a learned mouth-opening
    pattern, and a convolutional path over the whole window learns the rest (lip rounding,
    spreading, closures before plosives)."""
    layers = tf.keras.layers
    inp = layers.Input((dims.window_steps, dims.n_mels), name="mel")
    centre = dims.window_steps // 2
    lo = centre - dims.level_steps // 2
    level = layers.Lambda(lambda m: tf.clip_by_value(tf.reduce_mean(m[:, lo:lo + dims.level_steps, :], axis=[1, 2]),
                                                     0.0, 1.0)[:, None], name="level")(inp)
    level_feats = layers.Concatenate()([level, layers.Lambda(tf.sqrt, name="level_sqrt")(level + 1e-6)])
    direct = layers.Dense(dims.n_points * 2, name="level_to_shape")(level_feats)
    x = layers.Conv1D(dims.channels, 3, padding="same", activation="relu")(inp)
    x = layers.Conv1D(dims.channels, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv1D(dims.channels, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(dims.dropout, seed=seed)(x)
    x = layers.Dense(dims.hidden, activation="relu")(x)
    x = layers.Dropout(dims.dropout, seed=seed + 1)(x)
    residual = layers.Dense(dims.n_points * 2, name="residual")(x)
    # the residual pays for its size: the level path carries the sync, the residual the details
    residual = layers.ActivityRegularization(l2=dims.residual_penalty, name="residual_penalty")(residual)
    out = layers.Reshape((dims.n_points, 2))(layers.Add()([direct, residual]))
    return tf.keras.Model(inp, out, name="sound_to_shape")


class SyncModel:
    """The network plus what it needs to run and to be trained further."""

    def __init__(self, dims: ModelDimensions, weights: Optional[Dict[str, np.ndarray]] = None, seed: int = 0):
        """`seed` fixes the initial weights (when `weights` is None) and the dropout masks of training."""
        self.dims = dims
        tf.keras.utils.set_random_seed(seed)  # keras draws initial weights from its global generator
        self.net = build_network(dims, seed)
        if weights is not None:
            self.set_weights(weights)

    @property
    def n_parameters(self) -> int:
        return int(sum(np.prod(w.shape) for w in self.net.weights))

    def get_weights(self) -> Dict[str, np.ndarray]:
        return {f"w{i:02d}": w.numpy() for i, w in enumerate(self.net.weights)}

    def set_weights(self, weights: Dict[str, np.ndarray]) -> None:
        mine = self.net.weights
        if len(weights) != len(mine):
            raise ValueError(f"expected {len(mine)} weight arrays, got {len(weights)}")
        for i, var in enumerate(mine):
            value = weights[f"w{i:02d}"]
            if tuple(value.shape) != tuple(var.shape):
                raise ValueError(f"weight {i}: shape {value.shape}, expected {tuple(var.shape)}")
            var.assign(value)

    def copy(self, seed: int = 0) -> "SyncModel":
        return SyncModel(self.dims, self.get_weights(), seed)

    def predict(self, features: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """features: float32 (n, window_steps, n_mels) -> mouth displacements float32 (n, 20, 2)."""
        if len(features) == 0:
            return np.zeros((0, self.dims.n_points, 2), np.float32)
        out = [self._forward(tf.constant(features[i:i + batch_size])) for i in range(0, len(features), batch_size)]
        return np.concatenate([o.numpy() for o in out]) / TARGET_SCALE

    @tf.function(reduce_retracing=True)
    def _forward(self, x):
        return self.net(x, training=False)


def opening_of(mouths: np.ndarray) -> np.ndarray:
    """Mean inner-lip gap of (..., 20, 2) mouth points (canonical units: inter-ocular)."""
    gaps = mouths[..., _GAP_PAIRS[:, 1], :] - mouths[..., _GAP_PAIRS[:, 0], :]
    return np.linalg.norm(gaps, axis=-1).mean(-1)


class Trainer:
    """Adam steps on (features, displacement) pairs; `state()`/`load_state()` make it resumable."""

    def __init__(self, model: SyncModel, config: TrainConfig = TrainConfig()):
        self.model = model
        self.config = config
        self.optimizer = tf.keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay)
        self.optimizer.build(model.net.trainable_variables)
        self.step = 0
        self.rng = np.random.default_rng(config.seed)
        self._train_step = tf.function(self._step_fn, reduce_retracing=True)

    def _step_fn(self, x, y, w):
        with tf.GradientTape() as tape:
            pred = self.model.net(x, training=True)
            err = tf.reduce_mean(tf.square(pred - y), axis=[1, 2])
            up = tf.gather(pred, _GAP_PAIRS[:, 0], axis=1)
            low = tf.gather(pred, _GAP_PAIRS[:, 1], axis=1)
            gap = tf.reduce_mean(low[..., 1] - up[..., 1], axis=1)
            gap_true = tf.reduce_mean(tf.gather(y, _GAP_PAIRS[:, 1], axis=1)[..., 1]
                                      - tf.gather(y, _GAP_PAIRS[:, 0], axis=1)[..., 1], axis=1)
            loss = tf.reduce_sum(w * (err + self.config.opening_weight * tf.square(gap - gap_true))) / tf.reduce_sum(w)
            if self.model.net.losses:
                loss += tf.add_n(self.model.net.losses) / tf.cast(tf.shape(x)[0], tf.float32)
        grads = tape.gradient(loss, self.model.net.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.net.trainable_variables))
        return loss

    def batches(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> Iterator[tuple]:
        """Endless shuffled batches with a random level jitter on the sound features."""
        n = len(x)
        size = min(self.config.batch_size, n)
        while True:
            order = self.rng.permutation(n)
            for i in range(0, n - size + 1, size):
                idx = order[i:i + size]
                jitter = self.config.mel_jitter
                gain = 1.0 + self.rng.uniform(-jitter, jitter, (size, 1, 1))
                offset = self.rng.uniform(-jitter, jitter, (size, 1, 1))
                xb = (x[idx] * gain + offset).astype(np.float32)
                yield xb, (y[idx] * TARGET_SCALE).astype(np.float32), weight[idx].astype(np.float32)

    def run(self, x: np.ndarray, y: np.ndarray, steps: int, weight: Optional[np.ndarray] = None) -> Iterator[float]:
        """Trains `steps` steps on x (n, window_steps, n_mels), y (n, 20, 2); yields each step's loss."""
        if weight is None:
            weight = np.ones(len(x), np.float32)
        batches = self.batches(x, y, weight)
        for _ in range(steps):
            xb, yb, wb = next(batches)
            loss = float(self._train_step(tf.constant(xb), tf.constant(yb), tf.constant(wb)))
            self.step += 1
            yield loss

    def state(self) -> Dict[str, np.ndarray]:
        out = {f"opt{i:03d}": v.numpy() for i, v in enumerate(self.optimizer.variables)}
        out["step"] = np.int64(self.step)
        return out

    def load_state(self, state: Dict[str, np.ndarray]) -> None:
        variables = self.optimizer.variables
        for i, v in enumerate(variables):
            key = f"opt{i:03d}"
            if key in state:
                v.assign(state[key])
        self.step = int(state.get("step", 0))
        self.rng = np.random.default_rng(self.config.seed + self.step)
