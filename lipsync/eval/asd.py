"""An audio-visual "is this face speaking this sound" scorer: Light-ASD and LR-ASD in TensorFlow.

Light-ASD (Liao et al., CVPR 2023) and its successor LR-ASD (IJCV 2025) are small active-speaker
detectors trained on TalkSet (VoxCeleb2 and LRS3). They read grey 112x112 crops of the lower
face at 25 fps and 13 MFCCs at 100 Hz (4 per video frame), and give a logit per frame: positive
when the face is speaking this sound. This is an independent implementation of their published
model code (github.com/Junhua-Liao/Light-ASD, .../LR-ASD, MIT); the weights are converted once
from the published state dicts by `convert` (which alone needs PyTorch).

Shapes: faces (T, 112, 112) uint8; mfcc (4T, 13) float32; embeddings (T, 128).
"""
from __future__ import annotations

import functools
import math
from typing import Dict, Optional

import numpy as np

from ..backends import quiet_tensorflow

FPS = 25  # the network's frame rate
MFCC_PER_FRAME = 4  # 100 Hz features
CROP_SIZE = 112
ARCHITECTURES = ("light", "lr")

# python_speech_features.mfcc defaults, as the published demos call it (numcep=13, 25 ms, 10 ms)
_SR, _WIN, _HOP, _NFFT, _NFILT, _NCEP, _LIFTER, _PREEMPH = 16000, 400, 160, 512, 26, 13, 22, 0.97


# ---------------------------------------------------------------- sound features


def _hz_to_mel(hz):
    return 2595 * np.log10(1 + np.asarray(hz, np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700 * (10 ** (np.asarray(mel, np.float64) / 2595.0) - 1)


@functools.lru_cache(maxsize=None)
def _filterbank() -> np.ndarray:
    """(26, 257) triangular filters on FFT bins rounded down, as python_speech_features builds them."""
    edges = np.floor((_NFFT + 1) * _mel_to_hz(np.linspace(_hz_to_mel(0), _hz_to_mel(_SR / 2), _NFILT + 2)) / _SR)
    bins = np.arange(_NFFT // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (bins - lo) / np.maximum(mid - lo, 1e-12)
    fall = (hi - bins) / np.maximum(hi - mid, 1e-12)
    return np.where((bins >= lo) & (bins < mid), rise, np.where((bins >= mid) & (bins < hi), fall, 0.0))


def _dct_ortho(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out) matrix of the orthonormal DCT-II, first n_out coefficients."""
    k, i = np.arange(n_out)[None, :], np.arange(n_in)[:, None]
    m = np.cos(np.pi * k * (2 * i + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    m[:, 0] /= np.sqrt(2.0)
    return m


def mfcc(wav: np.ndarray) -> np.ndarray:
    """13 MFCCs at 100 Hz of a 16 kHz mono sound in [-1, 1]: (n_frames, 13) float32.

    Matches python_speech_features.mfcc(int16 samples, 16000, numcep=13), which the networks
    were trained on: pre-emphasis, rectangular 25 ms frames (the last one zero-padded), power
    spectrum over 512 bins, 26 mel filters, log, DCT, lifter 22, c0 replaced by log energy.
    """
    x = np.asarray(wav, np.float64) * 32768.0  # the networks saw int16 sample values
    x = np.append(x[:1], x[1:] - _PREEMPH * x[:-1])
    n = 1 if len(x) <= _WIN else 1 + int(math.ceil((len(x) - _WIN) / _HOP))
    x = np.pad(x, (0, (n - 1) * _HOP + _WIN - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, _WIN)[::_HOP][:n]
    power = np.abs(np.fft.rfft(frames, _NFFT)) ** 2 / _NFFT
    eps = np.finfo(float).eps
    energy = power.sum(1)
    energy[energy == 0] = eps
    bands = power @ _filterbank().T
    bands[bands == 0] = eps
    ceps = np.log(bands) @ _dct_ortho(_NFILT, _NCEP)
    ceps *= 1 + (_LIFTER / 2.0) * np.sin(np.pi * np.arange(_NCEP) / _LIFTER)
    ceps[:, 0] = np.log(energy)
    return ceps.astype(np.float32)


# ---------------------------------------------------------------- the network


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf
    return 0.5 * x * (1 + erf(x / np.sqrt(2.0)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


def gru(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
    """A one-layer GRU (PyTorch's gate order r, z, n) over x: (B, T, C) -> (B, T, H), from h = 0."""
    b, t, _ = x.shape
    hidden = w_hh.shape[1]
    gates_x = x @ w_ih.T + b_ih  # all time steps at once
    h = np.zeros((b, hidden), x.dtype)
    out = np.empty((b, t, hidden), x.dtype)
    for i in range(t):
        gh = h @ w_hh.T + b_hh
        r = _sigmoid(gates_x[:, i, :hidden] + gh[:, :hidden])
        z = _sigmoid(gates_x[:, i, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
        n = np.tanh(gates_x[:, i, 2 * hidden:] + r * gh[:, 2 * hidden:])
        h = (1 - z) * n + z * h
        out[:, i] = h
    return out


class ASDNet:
    """Light-ASD ('light') or LR-ASD ('lr') from their converted state dict (name -> array).

    The convolutional front ends run in TensorFlow with batch norm folded into the convolutions;
    the recurrent back end runs in numpy, batched over candidate sound offsets.
    """

    def __init__(self, weights: Dict[str, np.ndarray], architecture: Optional[str] = None):
        self.architecture = architecture or ("lr" if "model.fusion.attention.weight" in weights else "light")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}")
        self.w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        self._visual = self._audio = None

    # --- front ends
    def _fold(self, conv: str, bn: str):
        """A convolution followed by eval-mode batch norm as one kernel and bias (PyTorch layout)."""
        w = self.w
        scale = w[bn + ".weight"] / np.sqrt(w[bn + ".running_var"] + 1e-3)
        bias = w[bn + ".bias"] - w[bn + ".running_mean"] * scale
        kernel = w[conv + ".weight"] * scale.reshape((-1,) + (1,) * (w[conv + ".weight"].ndim - 1))
        return kernel, bias

    def _block_layers(self, prefix: str, dims: int):
        """The (kernel, bias) pairs of one encoder block, kernels moved to TensorFlow's layout."""
        perm = (2, 3, 4, 1, 0) if dims == 3 else (2, 3, 1, 0)
        if self.architecture == "light":
            names = {"visual": [("s_3", "bn_s_3"), ("t_3", "bn_t_3"), ("s_5", "bn_s_5"), ("t_5", "bn_t_5"),
                                ("last", "bn_last")],
                     "audio": [("m_3", "bn_m_3"), ("t_3", "bn_t_3"), ("m_5", "bn_m_5"), ("t_5", "bn_t_5"),
                               ("last", "bn_last")]}["visual" if dims == 3 else "audio"]
        else:
            first = "s" if dims == 3 else "m"
            names = [(f"{first}_1", f"{first}_norm_1"), (f"{first}_2", f"{first}_norm_2"),
                     ("t_1", "t_norm_1"), ("t_2", "t_norm_2")]
        out = []
        for conv, bn in names:
            k, b = self._fold(f"{prefix}.{conv}", f"{prefix}.{bn}")
            out.append((np.ascontiguousarray(k.transpose(perm)), b))
        return out

    def _build(self):
        tf = quiet_tensorflow()

        def conv(x, kernel, bias, strides):
            pads = [[0, 0]] + [[(s - 1) // 2] * 2 for s in kernel.shape[:-2]] + [[0, 0]]
            x = tf.pad(x, pads)
            op = tf.nn.conv3d if len(kernel.shape) == 5 else tf.nn.conv2d
            return tf.nn.relu(op(x, kernel, strides=[1, *strides, 1], padding="VALID") + bias)

        light = self.architecture == "light"
        vis = [self._block_layers(f"model.visualEncoder.block{i}", 3) for i in (1, 2, 3)]
        aud = [self._block_layers(f"model.audioEncoder.block{i}", 2) for i in (1, 2, 3)]

        def visual_block(x, layers, down):
            s = (1, 2, 2) if down else (1, 1, 1)
            if light:
                (s3, t3, s5, t5, last) = layers
                a = conv(conv(x, *s3, s), *t3, (1, 1, 1))
                b = conv(conv(x, *s5, s), *t5, (1, 1, 1))
                return conv(a + b, *last, (1, 1, 1))
            (s1, s2, t1, t2) = layers
            x = conv(conv(x, *s1, s), *s2, (1, 1, 1))
            return conv(conv(x, *t1, (1, 1, 1)), *t2, (1, 1, 1))

        def audio_block(x, layers):
            if light:
                (m3, t3, m5, t5, last) = layers
                a = conv(conv(x, *m3, (1, 1)), *t3, (1, 1))
                b = conv(conv(x, *m5, (1, 1)), *t5, (1, 1))
                return conv(a + b, *last, (1, 1))
            (m1, m2, t1, t2) = layers
            x = conv(conv(x, *m1, (1, 1)), *m2, (1, 1))
            return conv(conv(x, *t1, (1, 1)), *t2, (1, 1))

        def pool(x, axes):
            # max over 3 with stride 2 and one step of padding each side; inputs are >= 0 after
            # ReLU, so padding with zeros equals PyTorch's padding with -inf
            pads = [[1, 1] if a in axes else [0, 0] for a in range(len(x.shape))]
            window = [3 if a in axes else 1 for a in range(len(x.shape))]
            stride = [2 if a in axes else 1 for a in range(len(x.shape))]
            return tf.nn.max_pool(tf.pad(x, pads), window[1:-1], stride[1:-1], "VALID")

        @tf.function(reduce_retracing=True)
        def visual(frames):  # (1, T, 112, 112) uint8 -> (T, 128)
            x = (tf.cast(frames, tf.float32)[..., None] / 255.0 - 0.4161) / 0.1688
            x = pool(visual_block(x, vis[0], True), (2, 3))
            x = pool(visual_block(x, vis[1], False), (2, 3))
            x = visual_block(x, vis[2], False)
            return tf.reduce_max(x, axis=[2, 3])[0]

        @tf.function(reduce_retracing=True)
        def audio(feats):  # (1, 4T, 13) -> (T, 128)
            x = tf.transpose(feats, [0, 2, 1])[..., None]  # (1, 13, 4T, 1): MFCC x time
            x = pool(audio_block(x, aud[0]), (2,))
            x = pool(audio_block(x, aud[1]), (2,))
            x = audio_block(x, aud[2])
            return tf.reduce_mean(x, axis=1)[0]

        self._visual, self._audio = visual, audio

    def visual_embedding(self, faces: np.ndarray) -> np.ndarray:
        """(T, 112, 112) uint8 grey lower-face crops -> (T, 128)."""
        if self._visual is None:
            self._build()
        return self._visual(np.asarray(faces, np.uint8)[None]).numpy()

    def audio_embedding(self, feats: np.ndarray) -> np.ndarray:
        """(4T, 13) MFCCs -> (T, 128)."""
        if self._audio is None:
            self._build()
        return self._audio(np.asarray(feats, np.float32)[None]).numpy()

    # --- back end
    def _gru(self, x, name):
        w = self.w
        return gru(x, w[name + ".weight_ih_l0"], w[name + ".weight_hh_l0"], w[name + ".bias_ih_l0"], w[name + ".bias_hh_l0"])

    def _fusion(self, x1, x2, prefix):
        x = np.concatenate([x1, x2], axis=2)
        k, b = self._fold(prefix + ".attention", prefix + ".bn")
        return x * _sigmoid(x @ k[:, :, 0].T + b)

    def scores(self, audio_embed: np.ndarray, visual_embed: np.ndarray) -> np.ndarray:
        """Per-frame speaking logits from embeddings (B, T, 128) each (or (T, 128)) -> (B, T)."""
        a = audio_embed[None] if audio_embed.ndim == 2 else audio_embed
        v = visual_embed[None] if visual_embed.ndim == 2 else visual_embed
        a, v = np.broadcast_arrays(a, v)
        if self.architecture == "light":
            x = _gelu(self._gru(a + v, "model.GRU.gru_forward"))
            x = _gelu(self._gru(x[:, ::-1], "model.GRU.gru_backward")[:, ::-1])
        else:
            x = self._fusion(a, v, "model.fusion")
            fwd = self._gru(x, "model.detector.gru_forward")
            bwd = self._gru(np.ascontiguousarray(x[:, ::-1]), "model.detector.gru_backward")[:, ::-1]
            x = self._fusion(fwd, bwd, "model.detector.attention")
        return x @ self.w["lossAV.FC.weight"][1] + self.w["lossAV.FC.bias"][1]

    def __call__(self, feats: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Per-frame logits of faces (T, 112, 112) against their MFCCs (4T, 13): (T,)."""
        return self.scores(self.audio_embedding(feats), self.visual_embedding(faces))[0]


def convert(state_dict_path: str, out_path: str) -> None:
    """Publishes a Light-ASD/LR-ASD PyTorch checkpoint as a float32 .npz of the tensors scoring needs.

    Needs PyTorch; the file is read with weights_only=True, so no code in it runs.
    """
    import torch

    state = torch.load(state_dict_path, map_location="cpu", weights_only=True)
    keep = {k: v.float().numpy() for k, v in state.items()
            if (k.startswith("model.") or k.startswith("lossAV.")) and not k.endswith("num_batches_tracked")}
    np.savez_compressed(out_path, **keep)
