"""Wav2Lip's generator (Prajwal et al., 2020) in PyTorch, for the official checkpoints.

The layer layout and parameter names follow the published model exactly, so
`wav2lip.pth` / `wav2lip_gan.pth` load without renaming (apart from the `module.`
prefix that DataParallel left in them). Inputs follow DESIGN.md: mel windows
(B, 1, 80, 16) from `lipsync.audio`, and faces (B, 6, 96, 96): the 96x96 BGR crop in
[0, 1] with its lower half zeroed, stacked with a reference crop. The output is the
generated crop (B, 3, 96, 96) in [0, 1].

PyTorch is imported lazily: the rest of the toolkit runs without it.
"""
from __future__ import annotations

import functools
import os
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

from .errors import InputError, MissingBackendError

FACE_SIZE = 96
OFFICIAL_NAMES = ("wav2lip.pth", "wav2lip_gan.pth")
# checkpoints/wav2lip_gan.pth beside the package, where users put the official file
DEFAULT_CHECKPOINT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "checkpoints",
                                  "wav2lip_gan.pth")
DEFAULT_PADS = (0, 10, 0, 0)  # top, bottom, left, right, as Wav2Lip's inference script

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
            f"{' or '.join(OFFICIAL_NAMES)} from the Wav2Lip authors' release and put it in checkpoints/ "
            f"(or pass --checkpoint_path FILE)")


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
        raise MissingBackendError("--device cuda: PyTorch sees no CUDA GPU here (use --device cpu or auto)")
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


# --- crop and paste back -------------------------------------------------------------

def face_box(points: np.ndarray, frame_shape: Sequence[int],
             pads: Sequence[int] = DEFAULT_PADS) -> Tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the region Wav2Lip regenerates, from 68 landmarks.

    Like the face detector box Wav2Lip was trained on: cheek to cheek, from a little above
    the brows to the chin, then `pads` (top, bottom, left, right) pixels, clipped to the frame.
    """
    h, w = frame_shape[:2]
    x0, y_brow = points[:, 0].min(), points[17:27, 1].min()
    x1, y1 = points[:, 0].max(), points[:, 1].max()
    y0 = y_brow - 0.15 * (y1 - y_brow)
    top, bottom, left, right = pads
    box = (int(round(y0 - top)), int(round(y1 + bottom)), int(round(x0 - left)), int(round(x1 + right)))
    y0, y1, x0, x1 = max(0, box[0]), min(h, box[1]), max(0, box[2]), min(w, box[3])
    if y1 - y0 < 8 or x1 - x0 < 8:
        raise InputError(f"face box {box} is too small or outside the {w}x{h} frame")
    return y0, y1, x0, x1


@functools.lru_cache(maxsize=32)
def _paste_mask(height: int, width: int) -> np.ndarray:
    """Weights for pasting a generated crop: the lower face, faded out towards the box edges."""
    mask = np.zeros((height, width), np.float32)
    mask[int(height * 0.45):int(height * 0.97), int(width * 0.06):int(width * 0.94)] = 1.0
    k = max(3, int(0.08 * max(height, width)) | 1)
    mask = cv2.GaussianBlur(mask, (k, k), 0)[..., None]
    mask.setflags(write=False)  # shared between calls (cached)
    return mask


class Wav2LipRenderer:
    """Regenerates the lower face of frames with the Wav2Lip generator, in batches."""

    def __init__(self, model: Wav2LipModel, pads: Sequence[int] = DEFAULT_PADS):
        self.model = model
        self.pads = tuple(pads)

    def inputs(self, frames: Sequence[np.ndarray], boxes: Sequence[Tuple[int, int, int, int]]) -> np.ndarray:
        """(B, 6, 96, 96) faces: masked crop and reference crop, BGR in [0, 1]."""
        crops = np.stack([cv2.resize(f[y0:y1, x0:x1], (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
                          for f, (y0, y1, x0, x1) in zip(frames, boxes)]).astype(np.float32) / 255.0
        masked = crops.copy()
        masked[:, FACE_SIZE // 2:] = 0.0
        return np.concatenate([masked, crops], axis=3).transpose(0, 3, 1, 2)

    def render(self, frames: Sequence[np.ndarray], points: Sequence[np.ndarray], mels: np.ndarray) -> list:
        """New frames: each of `frames` with its face regenerated for its (80, 16) mel window."""
        if not frames:
            return []
        boxes = [face_box(p, f.shape, self.pads) for f, p in zip(frames, points)]
        out = self.model(mels[:, None].astype(np.float32), self.inputs(frames, boxes))
        result = []
        for frame, (y0, y1, x0, x1), crop in zip(frames, boxes, out):
            face = np.clip(crop.transpose(1, 2, 0) * 255.0, 0, 255)
            face = cv2.resize(face, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
            mask = _paste_mask(y1 - y0, x1 - x0)
            new = frame.copy()
            region = new[y0:y1, x0:x1].astype(np.float32)
            new[y0:y1, x0:x1] = np.clip(region + mask * (face - region) + 0.5, 0, 255).astype(np.uint8)
            result.append(new)
        return result

