"""A learned mouth interior: paints teeth, tongue and shading into lips opened wider than any
mouth the input showed (a photo, a closed-mouth video), in the person's own colours.

A small TensorFlow U-Net works in a pose-free crop around the mouth (the canonical frame of
`lipsync.generators.geometry`). Its input is that crop of the frame whose lips were already
moved to the wanted shape, with the inside of the inner lip blanked out, the blank's mask,
and the same crop of a reference frame of the person (the photo itself); it returns the
crop with the inside painted. Trained on the mouth banks of talking faces (see
`lipsync-train-interior`), where the blanked-out inside is known.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import cv2
import numpy as np

from ..face.exemplar import PATCH_BOX
from ..face.landmarks import INNER_LIP

FORMAT = "lipsync-interior/1"
INTERIOR_BOX = (-0.55, 0.72, 0.55, 1.54)  # canonical x0, y0, x1, y1 of the crop: the mouth and a margin
MASK_GROW = 2  # crop pixels the blanked inside reaches beyond the inner lip


@dataclasses.dataclass(frozen=True)
class InteriorDimensions:
    width: int = 80  # crop pixels
    height: int = 60
    channels: Tuple[int, ...] = (24, 48, 96)  # per level of the U-Net

    @property
    def scale(self) -> float:
        """Crop pixels per inter-ocular unit."""
        return self.width / (INTERIOR_BOX[2] - INTERIOR_BOX[0])


def crop_matrix(canonical_matrix: np.ndarray, bank_scale: float, dims: InteriorDimensions) -> np.ndarray:
    """(2, 3) affine from frame pixels to crop pixels, given the frame's affine to bank-patch
    pixels at `bank_scale` (`lipsync.face.exemplar.canonical_matrix`)."""
    k = dims.scale / bank_scale
    shift = (np.array(PATCH_BOX[:2]) - np.array(INTERIOR_BOX[:2])) * dims.scale
    return np.concatenate([canonical_matrix[:, :2] * k, (canonical_matrix[:, 2] * k + shift)[:, None]], axis=1)


def inside_mask(inner: np.ndarray, dims: InteriorDimensions) -> np.ndarray:
    """float32 (h, w) 1 inside the inner lip (8, 2) (crop pixels), grown by MASK_GROW."""
    mask = np.zeros((dims.height, dims.width), np.uint8)
    cv2.fillPoly(mask, [np.round(inner * 16).astype(np.int32)], 1, shift=4)
    mask = cv2.dilate(mask, np.ones((2 * MASK_GROW + 1, 2 * MASK_GROW + 1), np.uint8))
    return mask.astype(np.float32)


def network_inputs(crop: np.ndarray, mask: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """float32 (h, w, 7): the crop (BGR uint8) blanked where mask is 1, the mask, the reference
    crop, colours in [-1, 1]."""
    def unit(image):
        return image.astype(np.float32) / 127.5 - 1.0
    return np.concatenate([unit(crop) * (1 - mask[..., None]), mask[..., None], unit(reference)], axis=-1)


def build(dims: InteriorDimensions):
    """The U-Net (Keras): (B, h, w, 7) -> (B, h, w, 3) colours in [-1, 1]."""
    import tensorflow as tf

    layers = tf.keras.layers
    x = inputs = tf.keras.Input((dims.height, dims.width, 7))
    skips = []
    for i, c in enumerate(dims.channels):
        x = layers.Conv2D(c, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(c, 3, padding="same", activation="relu")(x)
        if i < len(dims.channels) - 1:
            skips.append(x)
            x = layers.MaxPool2D(2, padding="same")(x)
    for c, skip in zip(reversed(dims.channels[:-1]), reversed(skips)):
        x = layers.UpSampling2D(2, interpolation="bilinear")(x)
        x = layers.Cropping2D(((0, x.shape[1] - skip.shape[1]), (0, x.shape[2] - skip.shape[2])))(x)
        x = layers.Concatenate()([x, skip])
        x = layers.Conv2D(c, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(c, 3, padding="same", activation="relu")(x)
    out = layers.Conv2D(3, 1, activation="tanh")(x)
    return tf.keras.Model(inputs, out)


class InteriorPainter:
    """Runs the network on frames: paints the inside of wanted lips into a frame's region."""

    def __init__(self, model, dims: InteriorDimensions):
        self.model, self.dims = model, dims
        self.reference: Optional[np.ndarray] = None  # the person's crop, set once

    def crop(self, frame: np.ndarray, points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(crop (h, w, 3) uint8, affine frame -> crop) of a frame with landmarks (68, 2)."""
        from ..face.exemplar import canonical_matrix

        matrix = crop_matrix(canonical_matrix(points, 100.0), 100.0, self.dims)
        crop = cv2.warpAffine(frame, matrix, (self.dims.width, self.dims.height), flags=cv2.INTER_AREA,
                              borderMode=cv2.BORDER_REPLICATE)
        return crop, matrix

    def paint(self, image: np.ndarray, dst: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(painted crop float32 (h, w, 3) BGR, affine frame -> crop) for `image` (whose lips
        already sit at `dst`, (68, 2) in its pixels)."""
        crop, matrix = self.crop(image, dst)
        inner = dst[INNER_LIP] @ matrix[:, :2].T + matrix[:, 2]
        mask = inside_mask(inner, self.dims)
        reference = self.reference if self.reference is not None else crop
        x = network_inputs(crop, mask, reference)[None]
        out = np.asarray(self.model(x, training=False))[0]
        return (out + 1.0) * 127.5, matrix


def save(path: str, model, dims: InteriorDimensions, notes: dict) -> None:
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays["format"] = np.array(FORMAT)
    arrays["dims"] = np.array(repr(dataclasses.asdict(dims)))
    arrays["notes"] = np.array(repr(notes))
    np.savez_compressed(path, **arrays)


def load(path: str) -> InteriorPainter:
    import ast

    with np.load(path) as f:
        if str(f["format"]) != FORMAT:
            raise ValueError(f"{path}: not an interior model ({f['format']})")
        fields = ast.literal_eval(str(f["dims"]))
        dims = InteriorDimensions(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        weights = [f[f"w{i}"] for i in range(sum(k.startswith("w") for k in f.files))]
    model = build(dims)
    model.set_weights(weights)
    return InteriorPainter(model, dims)
