"""Wav2Lip's generator (Prajwal et al., 2020) in PyTorch, for the official checkpoints.

The layer layout and parameter names follow the published model exactly, so
`wav2lip.pth` / `wav2lip_gan.pth` load without renaming (apart from the `module.`
prefix that DataParallel left in them). Inputs follow Wav2Lip's conventions: mel windows
(B, 1, 80, 16) from `lipsync.io.audio`, and faces (B, 6, 96, 96): the 96x96 BGR crop in
[0, 1] with its lower half zeroed, stacked with a reference crop. The output is the
generated crop (B, 3, 96, 96) in [0, 1]. As a generator, its sound stage cuts each frame's
mel window and its renderer is `lipsync.render.paste.Wav2LipRenderer`.

PyTorch is imported lazily: the rest of the toolkit runs without it.
"""
from __future__ import annotations

import functools
import os
from typing import Dict, Tuple

import numpy as np

from .. import cache
from ..errors import InputError, MissingBackendError
from ..io import audio as audio_lib
from ..progress import Progress
from ..render.paste import Wav2LipRenderer
from ..stages import MouthRenderer, SoundToMouth
from .base import Generator, Source

OFFICIAL_NAMES = ("wav2lip.pth", "wav2lip_gan.pth")
DEFAULT_CHECKPOINT = os.path.join("checkpoints", "wav2lip_gan.pth")  # where users put the official file (from the working folder)

# One conv layer: (in, out, kernel, stride, padding, residual). Transposed layers add an
# output padding. The tables are the published architecture, block by block.
_R = lambda c: (c, c, 3, 1, 1, True)  # noqa: E731  (a residual 3x3 layer keeping c channels)

FACE_ENCODER = (
    ((6, 16, 7, 1, 3, False),),  # 96
    ((16, 32, 3, 2, 1, False), _R(32), _R(32)),  # 48
    ((32, 64, 3, 2, 1, False), _R(64), _R(64), _R(64)),  # 24
    ((64, 128, 3, 2, 1, False), _R(128), _R(128)),  # 12
    ((128, 256, 3, 2, 1, False), _R(256), _R(256)),  # 6
    ((256, 512, 3, 2, 1, False), _R(512)),  # 3
    ((512, 512, 3, 1, 0, False), (512, 512, 1, 1, 0, False)),  # 1
)
AUDIO_ENCODER = (
    (1, 32, 3, 1, 1, False), _R(32), _R(32),
    (32, 64, 3, (3, 1), 1, False), _R(64), _R(64),
    (64, 128, 3, 3, 1, False), _R(128), _R(128),
    (128, 256, 3, (3, 2), 1, False), _R(256),
    (256, 512, 3, 1, 0, False), (512, 512, 1, 1, 0, False),
)
# Decoder blocks: a first layer (transposed: (in, out, kernel, stride, padding, output_padding)),
# then residual layers. Each block's output is concatenated with the matching encoder features.
FACE_DECODER = (
    (None, (512, 512, 1, 1, 0, False)),  # the audio embedding, 1x1
    ((1024, 512, 3, 1, 0, 0), _R(512)),  # 3
    ((1024, 512, 3, 2, 1, 1), _R(512), _R(512)),  # 6
    ((768, 384, 3, 2, 1, 1), _R(384), _R(384)),  # 12
    ((512, 256, 3, 2, 1, 1), _R(256), _R(256)),  # 24
    ((320, 128, 3, 2, 1, 1), _R(128), _R(128)),  # 48
    ((160, 64, 3, 2, 1, 1), _R(64), _R(64)),  # 96
)


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingBackendError("the Wav2Lip path needs PyTorch, which is not installed: "
                                  "pip install torch==2.13.0 (the CPU build)") from None
    return torch


def build_generator():
    """The Wav2Lip generator as a torch.nn.Module, in evaluation mode, random weights."""
    torch = _torch()
    nn = torch.nn

    class ConvLayer(nn.Module):
        """conv -> batch norm (-> + input) -> ReLU; `conv_block` keeps the official key names."""

        def __init__(self, cin, cout, kernel, stride, padding, residual=False, transposed=False, output_padding=0):
            super().__init__()
            conv = (nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding) if transposed
                    else nn.Conv2d(cin, cout, kernel, stride, padding))
            self.conv_block = nn.Sequential(conv, nn.BatchNorm2d(cout))
            self.residual = residual

        def forward(self, x):
            y = self.conv_block(x)
            return torch.relu(y + x if self.residual else y)

    def layers(specs):
        return [ConvLayer(*spec) for spec in specs]

    def decoder_block(first, *rest):
        head = [ConvLayer(*first[:5], transposed=True, output_padding=first[5])] if first else []
        return nn.Sequential(*head, *layers(rest))

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.face_encoder_blocks = nn.ModuleList([nn.Sequential(*layers(b)) for b in FACE_ENCODER])
            self.audio_encoder = nn.Sequential(*layers(AUDIO_ENCODER))
            self.face_decoder_blocks = nn.ModuleList([decoder_block(*b) for b in FACE_DECODER])
            self.output_block = nn.Sequential(ConvLayer(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

        def forward(self, mel, face):
            """mel (B, 1, 80, 16), face (B, 6, 96, 96) -> (B, 3, 96, 96)."""
            skips = []
            x = face
            for block in self.face_encoder_blocks:
                x = block(x)
                skips.append(x)
            x = self.audio_encoder(mel)
            for block in self.face_decoder_blocks:
                x = torch.cat((block(x), skips.pop()), dim=1)
            return self.output_block(x)

    return Generator().eval()


def missing_checkpoint_message(path: str) -> str:
    return (f"{path}: Wav2Lip checkpoint not found. lipsync cannot download it: get the official "
            f"{' or '.join(OFFICIAL_NAMES)} from the Wav2Lip authors' release and put it at {DEFAULT_CHECKPOINT} "
            f"(or give the path of yours as the checkpoint)")


def read_state_dict(path: str) -> Dict[str, "object"]:
    """The generator weights in `path`, keys without DataParallel's `module.` prefix.

    Accepts the official layout ({"state_dict": {...}, "optimizer": ..., ...}) and a bare
    state dict. Loads with weights_only=True, so a file cannot run code when opened.
    """
    torch = _torch()
    if not os.path.isfile(path):
        raise MissingBackendError(missing_checkpoint_message(path))
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle and zip errors come in many classes
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            reason = "it holds Python objects besides tensors, which are not loaded for safety"
        raise InputError(f"{path}: not a loadable PyTorch weights file ({reason[:200]})") from None
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not state:
        raise InputError(f"{path}: no state_dict in this checkpoint")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


class Wav2LipModel:
    """Callable numpy front end of a loaded generator: model(mel, face) -> crops."""

    def __init__(self, module, device: str):
        self.module = module
        self.device = device

    def __call__(self, mel: np.ndarray, face: np.ndarray) -> np.ndarray:
        torch = _torch()
        with torch.inference_mode():
            m = torch.from_numpy(np.ascontiguousarray(mel, np.float32)).to(self.device)
            f = torch.from_numpy(np.ascontiguousarray(face, np.float32)).to(self.device)
            return self.module(m, f).float().cpu().numpy()


def resolve_device(device: str) -> str:
    torch = _torch()
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"unknown device {device!r} (choose from auto, cpu, cuda)")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise MissingBackendError("device cuda: PyTorch sees no CUDA GPU here (use cpu or auto)")
    return device


def load_wav2lip(path: str = DEFAULT_CHECKPOINT, device: str = "auto") -> Wav2LipModel:
    """Loads an official Wav2Lip checkpoint (or one in the same layout) for inference."""
    state = read_state_dict(path)
    module = build_generator()
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = "a SyncNet or discriminator checkpoint?" if any(k.startswith("face_encoder.") for k in unexpected) \
            else "not a Wav2Lip generator"
        detail = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise InputError(f"{path}: {len(missing)} weights missing, {len(unexpected)} unexpected "
                         f"({detail}): {what}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise InputError(f"{path}: weight {key} has shape {tuple(value.shape)}, "
                             f"expected {tuple(expected[key].shape)}: not the 96x96 Wav2Lip generator")
    module.load_state_dict(state)
    device = resolve_device(device)
    return Wav2LipModel(module.to(device), device)


@functools.lru_cache(maxsize=1)
def _load_once(path: str, device: str, stamp) -> Wav2LipModel:
    """The generator, loaded once per process while the file is unchanged (`stamp`, see
    `lipsync.cache.file_stamp`)."""
    return load_wav2lip(path, device=device)


class MelWindows(SoundToMouth):
    """Wav2Lip's sound stage: each frame's (80, 16) mel window, cut when it is rendered."""

    class Plan:
        def __init__(self, mel: np.ndarray, fps: float, n_frames: int):
            self.mel, self.fps, self.n = mel, fps, n_frames

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, indices) -> np.ndarray:
            return audio_lib.mel_windows_at(self.mel, self.fps, list(indices))

    def plan(self, wav: np.ndarray, fps: float, n_frames: int) -> "MelWindows.Plan":
        return MelWindows.Plan(audio_lib.melspectrogram(wav), fps, n_frames)


class Wav2LipGenerator(Generator):
    name = "wav2lip"

    def check(self) -> None:
        """PyTorch is installed and the checkpoint loads as the Wav2Lip generator."""
        self.model()

    def model(self) -> Wav2LipModel:
        path = self.settings.checkpoint_path or DEFAULT_CHECKPOINT
        return _load_once(path, self.settings.device, cache.file_stamp(path))

    def stages(self, source: Source, progress: Progress) -> Tuple[SoundToMouth, MouthRenderer]:
        return MelWindows(), Wav2LipRenderer(self.model(), self.settings.pads)
