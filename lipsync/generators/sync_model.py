"""The sync model: a small temporal TensorFlow network from sound to the whole mouth.

Input: a clip's log-mel (`lipsync.io.audio.melspectrogram`, 80 steps per second)
normalised per speaker (`SpeakerNorm`), float32 (B, T, n_mels). Two mel steps make one
model step (`STEP_RATE`, 40 per second). Output: for every model step, the 20 mouth
landmarks as a displacement from the person's rest shape in the canonical face frame
(`lipsync.generators.geometry`), in units of the person's opening range (1 = from closed
to their wide-open mouth), float32 (B, T // 2, 20, 2).

The network is causal with a fixed look-ahead: its output at step j is the mouth at step
j - `lookahead` and reads the sound up to step j, so a stream can be planned with
`lookahead / STEP_RATE` seconds of delay. Inside, residual blocks of dilated 1-D
convolutions over time (the mel bands are the channels) see about 0.8 s of past sound.
Hyperparameters are a `ModelDimensions`, stored in every checkpoint and used to rebuild
it. This module does no file I/O; see `lipsync.generators.checkpoint`.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from ..io.audio import MEL_FRAMES_PER_SECOND
from .geometry import GAP_PAIRS, N_MOUTH
from .visemes import N_VISEMES

MEL_PER_STEP = 2
STEP_RATE = MEL_FRAMES_PER_SECOND / MEL_PER_STEP  # model steps per second
NORM_PRIOR_STEPS = 200  # a stream's normalisation starts from the training data's statistics, worth 2.5 s
MIN_STD = 0.05
PREDICT_BLOCK = 6000  # model steps (150 s of sound) predicted at once



@dataclasses.dataclass(frozen=True)
class ModelDimensions:
    n_mels: int = 80
    cepstra: int = 20  # > 0: the network reads this many cepstral coefficients (a DCT of the bands), not the bands
    visemes: int = N_VISEMES  # > 0: it also reads the phones heard, grouped into visemes (`visemes.py`)
    channels: int = 96
    kernel: int = 3
    dilations: Tuple[int, ...] = (1, 2, 4, 8, 1)
    lookahead: int = 8  # model steps of sound after a frame's time that the model reads (8: 0.2 s)
    dropout: float = 0.25
    n_points: int = N_MOUTH

    @property
    def receptive_steps(self) -> int:
        """Model steps of past sound (including the current one) an output step depends on."""
        return 1 + (self.kernel - 1) * sum(self.dilations)

    @property
    def lookahead_s(self) -> float:
        return self.lookahead / STEP_RATE


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    learning_rate: float = 2e-3
    batch_size: int = 16
    chunk_steps: int = 128  # model steps per training sequence (3.2 s)
    weight_decay: float = 1e-4
    opening_weight: float = 4.0  # extra weight on the inner-lip opening, which a viewer reads first
    velocity_weight: float = 2.0  # weight of the frame-to-frame change (crisp closures, not a smeared mean)
    seed: int = 0


class SpeakerNorm:
    """Per-band mean and spread of a speaker's log-mel, subtracted and divided out.

    Offline (`fit` on a whole clip) or on a stream (`update` chunk by chunk): the stream starts
    from the training data's statistics (`prior`, worth NORM_PRIOR_STEPS mel steps) and moves
    towards the speaker's own as their sound arrives. Silence (the floor of the normalised
    log-mel) does not count, so long pauses do not pull the statistics down.
    """

    def __init__(self, prior_mean: np.ndarray, prior_std: np.ndarray, prior_steps: int = NORM_PRIOR_STEPS):
        self.prior_mean, self.prior_std = prior_mean.astype(np.float64), prior_std.astype(np.float64)
        self.n = float(prior_steps)
        self.sum = self.prior_mean * self.n
        self.sumsq = (self.prior_std ** 2 + self.prior_mean ** 2) * self.n

    @staticmethod
    def sounding(mel: np.ndarray) -> np.ndarray:
        """bool (T,): mel steps that are not near-digital silence."""
        return mel.mean(axis=0) > -3.5

    def update(self, mel: np.ndarray) -> None:
        """Adds the statistics of (n_mels, T) log-mel steps."""
        m = mel[:, self.sounding(mel)].astype(np.float64)
        self.n += m.shape[1]
        self.sum += m.sum(axis=1)
        self.sumsq += (m ** 2).sum(axis=1)

    @property
    def mean(self) -> np.ndarray:
        return self.sum / self.n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.sumsq / self.n - self.mean ** 2, MIN_STD ** 2))

    def running(self, mel: np.ndarray) -> np.ndarray:
        """Adds (n_mels, T) log-mel steps and returns them normalised as a stream is, each step
        with the statistics up to and including itself: float32 (T, n_mels)."""
        sounding = self.sounding(mel).astype(np.float64)
        m = mel.astype(np.float64) * sounding
        n = self.n + np.cumsum(sounding)
        total = self.sum[:, None] + np.cumsum(m, axis=1)
        squares = self.sumsq[:, None] + np.cumsum(m * mel, axis=1)
        mean = total / n
        std = np.sqrt(np.maximum(squares / n - mean ** 2, MIN_STD ** 2))
        if mel.shape[1]:
            self.n, self.sum, self.sumsq = float(n[-1]), total[:, -1].copy(), squares[:, -1].copy()
        return ((mel - mean) / std).T.astype(np.float32)

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        """(n_mels, T) log-mel -> float32 (T, n_mels) normalised, time first as the network reads it."""
        return ((mel - self.mean[:, None]) / self.std[:, None]).T.astype(np.float32)

    @staticmethod
    def fit(mel: np.ndarray, prior_mean: np.ndarray, prior_std: np.ndarray) -> "SpeakerNorm":
        """The normalisation of a whole clip (the prior only weighs in when it is short)."""
        norm = SpeakerNorm(prior_mean, prior_std, prior_steps=10)
        norm.update(mel)
        return norm


def dct_basis(n: int, k: int) -> np.ndarray:
    """float32 (n, k): orthonormal DCT-II of n values, first k coefficients."""
    i = np.arange(n)[:, None]
    basis = np.cos(np.pi / n * (i + 0.5) * np.arange(k)[None, :]) * np.sqrt(2.0 / n)
    basis[:, 0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


def build_network(dims: ModelDimensions, seed: int = 0) -> tf.keras.Model:
    """Causal residual stack: (B, T, n_mels + visemes) normalised log-mel (and viseme track) ->
    (B, T // 2, n_points, 2)."""
    layers = tf.keras.layers
    inp = layers.Input((None, dims.n_mels + dims.visemes), name="sound")
    x, width = layers.Lambda(lambda m: m[..., :dims.n_mels], name="mel")(inp), dims.n_mels
    if dims.cepstra:  # the spectral envelope without the voice's harmonics
        basis = tf.constant(dct_basis(dims.n_mels, dims.cepstra))
        x, width = layers.Lambda(lambda m: tf.matmul(m, basis), name="cepstra")(x), dims.cepstra
    if dims.visemes:
        x = layers.Concatenate()([x, layers.Lambda(lambda m: m[..., dims.n_mels:], name="visemes")(inp)])
        width += dims.visemes
    # two mel steps per model step: (B, T, width) -> (B, T/2, 2 width)
    x = layers.Lambda(lambda m: tf.reshape(m[:, :tf.shape(m)[1] // MEL_PER_STEP * MEL_PER_STEP],
                                           [tf.shape(m)[0], -1, width * MEL_PER_STEP]), name="pair_steps")(x)
    x = layers.Conv1D(dims.channels, 1, activation="relu", name="project")(x)
    for k, d in enumerate(dims.dilations):
        h = layers.Conv1D(dims.channels, dims.kernel, dilation_rate=d, padding="causal", activation="relu",
                          name=f"block{k}_conv")(x)
        h = layers.Dropout(dims.dropout, seed=seed + k)(h)
        h = layers.Conv1D(dims.channels, 1, name=f"block{k}_mix")(h)
        x = layers.LayerNormalization(name=f"block{k}_norm")(layers.Add()([x, h]))
    out = layers.Dense(dims.n_points * 2, name="mouth")(x)
    out = layers.Reshape((-1, dims.n_points, 2))(out)
    return tf.keras.Model(inp, out, name="sound_to_mouth")


class SyncModel:
    """The network, its dimensions and the training data's log-mel statistics (the prior of
    `SpeakerNorm`)."""

    def __init__(self, dims: ModelDimensions, weights: Optional[Dict[str, np.ndarray]] = None, seed: int = 0):
        """`seed` fixes the initial weights (when `weights` is None) and the dropout masks of training."""
        self.dims = dims
        if weights is None:  # keras draws initial weights from its global generator: seeded for new weights only
            tf.keras.utils.set_random_seed(seed)
        self.net = build_network(dims, seed)
        self._numpy_weights: Optional[Dict[str, list]] = None  # forward_numpy's copy, made on first use
        self._norm_epsilon = [self.net.get_layer(f"block{k}_norm").epsilon for k in range(len(dims.dilations))]
        self.mel_mean = np.zeros(dims.n_mels, np.float32)
        self.mel_std = np.ones(dims.n_mels, np.float32)
        if weights is not None:
            self.set_weights(weights)

    @property
    def n_parameters(self) -> int:
        return int(sum(np.prod(w.shape) for w in self.net.weights))

    def get_weights(self) -> Dict[str, np.ndarray]:
        out = {f"w{i:02d}": w.numpy() for i, w in enumerate(self.net.weights)}
        out.update(mel_mean=self.mel_mean, mel_std=self.mel_std)
        return out

    def set_weights(self, weights: Dict[str, np.ndarray]) -> None:
        mine = self.net.weights
        n = len([k for k in weights if k.startswith("w")])
        if n != len(mine):
            raise ValueError(f"expected {len(mine)} weight arrays, got {n}")
        for i, var in enumerate(mine):
            value = weights[f"w{i:02d}"]
            if tuple(value.shape) != tuple(var.shape):
                raise ValueError(f"weight {i}: shape {value.shape}, expected {tuple(var.shape)}")
            var.assign(value)
        self._numpy_weights = None
        self.mel_mean = np.asarray(weights["mel_mean"], np.float32)
        self.mel_std = np.asarray(weights["mel_std"], np.float32)

    def copy(self, seed: int = 0) -> "SyncModel":
        return SyncModel(self.dims, self.get_weights(), seed)

    def norm(self, mel: Optional[np.ndarray] = None) -> SpeakerNorm:
        """The speaker normalisation of a whole clip's (n_mels, T) log-mel, or (None) an empty one
        for a stream."""
        if mel is None:
            return SpeakerNorm(self.mel_mean, self.mel_std)
        return SpeakerNorm.fit(mel, self.mel_mean, self.mel_std)

    def predict_steps(self, x: np.ndarray, block: int = PREDICT_BLOCK) -> np.ndarray:
        """x: float32 (T, n_mels) normalised -> float32 (T // 2, n_points, 2), the raw causal output
        (step j is the mouth at step j - lookahead). Long sound runs in blocks of `block` model
        steps, each with the past its first output needs, so memory stays flat and the result
        is the same."""
        n = len(x) // MEL_PER_STEP
        out = np.empty((n, self.dims.n_points, 2), np.float32)
        past = self.dims.receptive_steps - 1
        for first in range(0, n, block):
            last = min(n, first + block)
            start = max(0, first - past)
            y = self._forward(tf.constant(x[None, start * MEL_PER_STEP:last * MEL_PER_STEP]))[0].numpy()
            out[first:last] = y[first - start:]
        return out

    def inputs(self, mel: np.ndarray, visemes: Optional[np.ndarray] = None,
               norm: Optional[SpeakerNorm] = None) -> np.ndarray:
        """The network's input (T, n_mels + visemes) for a raw (n_mels, T) log-mel and its viseme
        track (T, visemes), which the model needs when it reads visemes."""
        x = (norm or self.norm(mel))(mel)
        if self.dims.visemes:
            if visemes is None or len(visemes) != len(x):
                raise ValueError("this model reads the phones heard: give their viseme track, one row per mel step")
            x = np.concatenate([x, visemes.astype(np.float32)], axis=1)
        return x

    def mouths(self, mel: np.ndarray, times: np.ndarray, visemes: Optional[np.ndarray] = None,
               norm: Optional[SpeakerNorm] = None) -> np.ndarray:
        """The mouth at each of `times` (seconds), float32 (len(times), n_points, 2), from the whole
        (n_mels, T) raw log-mel `mel` (and its viseme track); sound past its end reads as silence."""
        x = self.inputs(mel, visemes, norm)
        pad = np.repeat(self.silence(x)[None], MEL_PER_STEP * (self.dims.lookahead + 2), axis=0)
        out = self.predict_steps(np.concatenate([x, pad]))
        return sample_steps(out, times, self.dims.lookahead)

    def silence(self, x: np.ndarray) -> np.ndarray:
        """The input row (n_mels + visemes,) that reads as silence, for inputs `x` of one clip."""
        row = np.full(x.shape[1], 0.0, np.float32)
        row[:self.dims.n_mels] = x[:, :self.dims.n_mels].min(axis=0) if len(x) else -3.0
        if self.dims.visemes:
            row[self.dims.n_mels] = 1.0
        return row

    @tf.function(reduce_retracing=True)
    def _forward(self, x):
        return self.net(x, training=False)

    def forward_numpy(self, x: np.ndarray) -> np.ndarray:
        """The network of `build_network` in numpy, for the short windows of a stream (a
        TensorFlow call costs milliseconds of overhead; this, a tenth of one): x float32
        (T, n_mels + visemes) -> (T // 2, n_points, 2), the same output as the network's."""
        if self._numpy_weights is None:
            self._numpy_weights = {layer.name: [w.numpy() for w in layer.weights] for layer in self.net.layers
                                   if layer.weights}
        w, dims = self._numpy_weights, self.dims
        h = x[:, :dims.n_mels]
        if dims.cepstra:
            h = h @ dct_basis(dims.n_mels, dims.cepstra)
        if dims.visemes:
            h = np.concatenate([h, x[:, dims.n_mels:]], axis=1)
        steps = len(h) // MEL_PER_STEP
        h = h[:steps * MEL_PER_STEP].reshape(steps, -1)
        kernel, bias = w["project"]
        h = np.maximum(h @ kernel[0] + bias, 0.0)
        for k, d in enumerate(dims.dilations):
            kernel, bias = w[f"block{k}_conv"]  # (kernel, in, out): tap j reads step t - (kernel - 1 - j) d
            padded = np.concatenate([np.zeros(((dims.kernel - 1) * d, h.shape[1]), h.dtype), h])
            conv = sum(padded[j * d:j * d + steps] @ kernel[j] for j in range(dims.kernel)) + bias
            mix_kernel, mix_bias = w[f"block{k}_mix"]
            y = h + np.maximum(conv, 0.0) @ mix_kernel[0] + mix_bias
            gamma, beta = w[f"block{k}_norm"]
            mean, var = y.mean(axis=1, keepdims=True), y.var(axis=1, keepdims=True)
            h = (y - mean) / np.sqrt(var + self._norm_epsilon[k]) * gamma + beta
        kernel, bias = w["mouth"]
        return (h @ kernel + bias).reshape(steps, dims.n_points, 2).astype(np.float32)


def interpolate(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """float32 (len(pos), ...): rows (n, ...) of `values` linearly interpolated at fractional
    row positions `pos`, clipped to the first and last row."""
    pos = np.clip(np.asarray(pos, np.float64), 0, len(values) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(values) - 1)
    w = (pos - lo).reshape((-1,) + (1,) * (values.ndim - 1))
    return ((1 - w) * values[lo] + w * values[hi]).astype(np.float32)


def sample_steps(out: np.ndarray, times: np.ndarray, lookahead: int) -> np.ndarray:
    """Causal model output (S, ...) at `times` (seconds): step j is the mouth at step j - lookahead."""
    return interpolate(out, np.asarray(times, np.float64) * STEP_RATE + lookahead)


class Trainer:
    """AdamW steps on batches of (normalised log-mel sequence, mouth per model step, mask);
    `state()`/`load_state()` make it resumable."""

    def __init__(self, model: SyncModel, config: TrainConfig = TrainConfig(), total_steps: int = 0):
        self.model = model
        self.config = config
        rate = config.learning_rate
        if total_steps:
            rate = tf.keras.optimizers.schedules.CosineDecay(config.learning_rate, total_steps, alpha=0.05)
        self.optimizer = tf.keras.optimizers.AdamW(rate, weight_decay=config.weight_decay, clipnorm=1.0)
        self.optimizer.build(model.net.trainable_variables)
        self.step = 0
        self._train_step = tf.function(self._step_fn, reduce_retracing=True)
        self._eval_step = tf.function(self._loss, reduce_retracing=True)

    def _loss(self, x, y, mask, training=False):
        """x (B, T, n_mels), y (B, S, n_points, 2), mask (B, S): S = T // 2 steps, y already shifted
        by the look-ahead (y[:, j] is the mouth at step j - lookahead)."""
        pred = self.model.net(x, training=training)
        m = mask[..., None, None]
        denom = tf.reduce_sum(mask) + 1.0
        point = tf.reduce_sum(m * tf.square(pred - y)) / denom / (self.model.dims.n_points * 2)

        def gap(p):
            return tf.reduce_mean(tf.gather(p, GAP_PAIRS[:, 1], axis=2)[..., 1]
                                  - tf.gather(p, GAP_PAIRS[:, 0], axis=2)[..., 1], axis=2)

        opening = tf.reduce_sum(mask * tf.square(gap(pred) - gap(y))) / denom
        both = mask[:, 1:] * mask[:, :-1]
        dv = (pred[:, 1:] - pred[:, :-1]) - (y[:, 1:] - y[:, :-1])
        velocity = tf.reduce_sum(both[..., None, None] * tf.square(dv)) / (tf.reduce_sum(both) + 1.0) \
            / (self.model.dims.n_points * 2)
        return point + self.config.opening_weight * opening + self.config.velocity_weight * velocity

    def _step_fn(self, x, y, mask):
        with tf.GradientTape() as tape:
            loss = self._loss(x, y, mask, training=True)
        grads = tape.gradient(loss, self.model.net.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.net.trainable_variables))
        return loss

    def train_step(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
        self.step += 1
        return float(self._train_step(tf.constant(x), tf.constant(y), tf.constant(mask)))

    def loss(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
        return float(self._eval_step(tf.constant(x), tf.constant(y), tf.constant(mask)))

    def state(self) -> Dict[str, np.ndarray]:
        out = {f"opt{i:03d}": v.numpy() for i, v in enumerate(self.optimizer.variables)}
        out["step"] = np.int64(self.step)
        return out

    def load_state(self, state: Dict[str, np.ndarray]) -> None:
        for i, v in enumerate(self.optimizer.variables):
            key = f"opt{i:03d}"
            if key in state:
                v.assign(state[key])
        self.step = int(state.get("step", 0))

