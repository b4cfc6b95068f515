"""Crop and paste-back for generators that regenerate a whole face crop (Wav2Lip): the box
they were trained on, taken from the landmarks, and a feathered lower-face mask, so that no
box edge shows and nothing above the mouth region changes much."""
from __future__ import annotations

import functools
from typing import Callable, List, Sequence

import cv2
import numpy as np

from ..errors import InputError
from ..face.detect import Box
from ..face.landmarks import BROWS
from ..stages import MouthRenderer

FACE_SIZE = 96
DEFAULT_PADS = (0, 10, 0, 0)  # top, bottom, left, right, as Wav2Lip's inference script


def face_box(points: np.ndarray, frame_shape: Sequence[int],
             pads: Sequence[int] = DEFAULT_PADS) -> Box:
    """(left, top, right, bottom) of the region Wav2Lip regenerates, from 68 landmarks.

    Like the face detector box Wav2Lip was trained on: cheek to cheek, from a little above
    the brows to the chin, then `pads` (top, bottom, left, right) pixels, clipped to the frame.
    """
    h, w = frame_shape[:2]
    chin, brow = points[:, 1].max(), points[BROWS, 1].min()
    pad_top, pad_bottom, pad_left, pad_right = pads
    box = (int(round(points[:, 0].min() - pad_left)), int(round(brow - 0.15 * (chin - brow) - pad_top)),
           int(round(points[:, 0].max() + pad_right)), int(round(chin + pad_bottom)))
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    if y1 - y0 < 8 or x1 - x0 < 8:
        raise InputError(f"face box {box} (left, top, right, bottom) is too small or outside the {w}x{h} frame")
    return x0, y0, x1, y1


@functools.lru_cache(maxsize=32)
def _paste_mask(height: int, width: int) -> np.ndarray:
    """Weights for pasting a generated crop: the lower face, faded out towards the box edges."""
    mask = np.zeros((height, width), np.float32)
    mask[int(height * 0.45):int(height * 0.97), int(width * 0.06):int(width * 0.94)] = 1.0
    k = max(3, int(0.08 * max(height, width)) | 1)
    mask = cv2.GaussianBlur(mask, (k, k), 0)[..., None]
    mask.setflags(write=False)  # shared between calls (cached)
    return mask


class Wav2LipRenderer(MouthRenderer):
    """Regenerates the lower face of frames with a Wav2Lip-style generator, in batches.

    `model(mel, face)`: mel windows (B, 1, 80, 16) and faces (B, 6, 96, 96) -> crops (B, 3, 96, 96).
    """

    def __init__(self, model: Callable[[np.ndarray, np.ndarray], np.ndarray], pads: Sequence[int] = DEFAULT_PADS):
        self.model = model
        self.pads = tuple(pads)

    def inputs(self, frames: Sequence[np.ndarray], boxes: Sequence[Box]) -> np.ndarray:
        """(B, 6, 96, 96) faces: masked crop and reference crop, BGR in [0, 1]."""
        crops = np.stack([cv2.resize(f[y0:y1, x0:x1], (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
                          for f, (x0, y0, x1, y1) in zip(frames, boxes)]).astype(np.float32) / 255.0
        masked = crops.copy()
        masked[:, FACE_SIZE // 2:] = 0.0
        return np.concatenate([masked, crops], axis=3).transpose(0, 3, 1, 2)

    def render(self, frames: Sequence[np.ndarray], points: Sequence[np.ndarray], mels: np.ndarray) -> List[np.ndarray]:
        """New frames: each of `frames` with its face regenerated for its (80, 16) mel window."""
        if not frames:
            return []
        boxes = [face_box(p, f.shape, self.pads) for f, p in zip(frames, points)]
        out = self.model(mels[:, None].astype(np.float32), self.inputs(frames, boxes))
        result = []
        for frame, (x0, y0, x1, y1), crop in zip(frames, boxes, out):
            face = np.clip(crop.transpose(1, 2, 0) * 255.0, 0, 255)
            face = cv2.resize(face, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
            mask = _paste_mask(y1 - y0, x1 - x0)
            new = frame.copy()
            region = new[y0:y1, x0:x1].astype(np.float32)
            new[y0:y1, x0:x1] = np.clip(region + mask * (face - region) + 0.5, 0, 255).astype(np.uint8)
            result.append(new)
        return result

