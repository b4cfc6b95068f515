"""Zero-phase Gaussian smoothing over time, the one smoother of the toolkit."""
from __future__ import annotations

import numpy as np

TRUNCATE = 3.0  # kernel radius in standard deviations (rounded up)


def gaussian(x: np.ndarray, sigma: float, axis: int = 0) -> np.ndarray:
    """`x` smoothed along `axis` by a normalised Gaussian of `sigma` samples, edges held
    (the first and last values repeat). Same shape and dtype as `x`; no lag."""
    x = np.asarray(x)
    if sigma <= 0 or x.shape[axis] < 2:
        return x.copy()
    radius = max(1, int(np.ceil(TRUNCATE * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    moved = np.moveaxis(x.astype(np.float64), axis, 0)
    padded = np.concatenate([np.repeat(moved[:1], radius, 0), moved, np.repeat(moved[-1:], radius, 0)])
    out = sum(w * padded[k:k + len(moved)] for k, w in enumerate(kernel))
    return np.moveaxis(out, 0, axis).astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)
