"""Lip-sync measures on landmark tracks, frames and sounds. Pure functions, no file I/O.

Landmark tracks are (n, 68, 2) float arrays with NaN rows for frames without a face.
Lags follow one rule everywhere: `best_lag(a, b) == k` means that `a` at frame t + k
matches `b` at frame t, i.e. `a` is k frames late.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from ..face.landmarks import MOUTH, STABLE, inter_ocular
from ..io.phones import BILABIALS

PSNR_CAP_DB = 100.0  # identical frames


def pearson(a: np.ndarray, b: np.ndarray, min_frames: int = 5) -> float:
    """Correlation over the frames where both are defined; NaN if too few or constant."""
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], float), np.asarray(b[:n], float)
    m = ~(np.isnan(a) | np.isnan(b))
    if m.sum() < min_frames or np.std(a[m]) < 1e-9 or np.std(b[m]) < 1e-9:
        return float("nan")
    return float(np.corrcoef(a[m], b[m])[0, 1])


def detrend(x: np.ndarray, width: int) -> np.ndarray:
    """x minus its centred moving average over `width` frames (NaN kept): removes slow drifts
    (loudness, head pose) that make spurious correlations at large lags."""
    x = np.asarray(x, float)
    nan = np.isnan(x)
    if nan.all() or width < 2:
        return x.copy()
    filled = np.where(nan, np.nanmean(x), x)
    kernel = np.ones(width) / width
    trend = np.convolve(np.pad(filled, (width // 2, width - 1 - width // 2), mode="edge"), kernel, mode="valid")
    out = filled - trend
    out[nan] = np.nan
    return out


def lag_correlations(a: np.ndarray, b: np.ndarray, max_lag: int) -> Dict[int, float]:
    """corr(a[t + k], b[t]) for k in [-max_lag, max_lag] (NaN where undefined).

    Every lag is judged on the same frames t in [max_lag, n - max_lag), so that no lag
    wins by being measured on fewer, luckier frames.
    """
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], float), np.asarray(b[:n], float)
    t = np.arange(max_lag, n - max_lag)
    return {k: pearson(a[t + k], b[t]) for k in range(-max_lag, max_lag + 1)}


def best_lag(a: np.ndarray, b: np.ndarray, max_lag: int = 15) -> Tuple[Optional[int], float, float]:
    """(lag, correlation at that lag, confidence) of the best alignment of `a` to `b`.

    Lags up to `max_lag` are tried, fewer on short series (at most a seventh of their
    length: the rhythm of syllables repeats and long lags on few frames mislead).
    Confidence is the peak correlation minus the median over all lags tried (as SyncNet
    reports it): near 0 means no clear alignment.
    """
    max_lag = max(1, min(max_lag, min(len(a), len(b)) // 7))
    corr = {k: v for k, v in lag_correlations(a, b, max_lag).items() if not np.isnan(v)}
    if not corr:
        return None, float("nan"), 0.0
    lag = max(corr, key=corr.get)
    return lag, corr[lag], float(corr[lag] - np.median(list(corr.values())))


def closed_threshold(openings: np.ndarray) -> float:
    """The dub test's rule: a mouth is closed at or below min + 20% of its (min, 95th percentile) range."""
    finite = np.asarray(openings, float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return float("nan")
    lo, hi = float(finite.min()), float(np.percentile(finite, 95))
    return lo + 0.2 * (hi - lo)


def closed_f1(result: np.ndarray, reference: np.ndarray) -> float:
    """F1 of the result's closed-mouth frames against the reference's, from inner-lip openings.

    Closed = opening at or below the reference's minimum plus 20% of its minimum-to-95th-
    percentile range (the dub test's rule): closures on m/b/p and in pauses. NaN on fewer than
    10 frames with both faces.
    """
    n = min(len(result), len(reference))
    a, b = np.asarray(result[:n], float), np.asarray(reference[:n], float)
    m = ~(np.isnan(a) | np.isnan(b))
    if m.sum() < 10:
        return float("nan")
    threshold = closed_threshold(b[m])
    closed_a, closed_b = a[m] <= threshold, b[m] <= threshold
    both = float(np.sum(closed_a & closed_b))
    return 0.0 if both == 0 else 2 * both / float(closed_a.sum() + closed_b.sum())


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, shift) taking src points to dst."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    u, sig, vt = np.linalg.svd(d.T @ s)
    fix = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ fix @ vt
    scale = (sig * np.diag(fix)).sum() / max(1e-12, (s ** 2).sum())
    m = scale * rot
    return np.hstack([m, (md - ms @ m.T)[:, None]])


def landmark_distance(result: np.ndarray, reference: np.ndarray) -> Tuple[float, np.ndarray]:
    """Mouth landmark distance (LMD) after pose alignment, in % of the inter-ocular distance.

    Both tracks are aligned on their stable points (nose, eye corners) to the mean reference
    face. Returns (mean over frames with both faces, per-frame values with NaN elsewhere).
    """
    n = min(len(result), len(reference))
    valid = [p for p in reference[:n] if not np.isnan(p[0, 0])]
    per_frame = np.full(n, np.nan)
    if not valid:
        return float("nan"), per_frame
    template = np.mean(valid, axis=0)
    scale = inter_ocular(template)
    for i in range(n):
        r, g = result[i], reference[i]
        if np.isnan(r[0, 0]) or np.isnan(g[0, 0]):
            continue
        mr, mg = similarity_transform(r[STABLE], template[STABLE]), similarity_transform(g[STABLE], template[STABLE])
        ar = r[MOUTH] @ mr[:, :2].T + mr[:, 2]
        ag = g[MOUTH] @ mg[:, :2].T + mg[:, 2]
        per_frame[i] = np.linalg.norm(ar - ag, axis=1).mean() / scale * 100
    return (float(np.nanmean(per_frame)) if np.isfinite(per_frame).any() else float("nan")), per_frame


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (capped at PSNR_CAP_DB)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return PSNR_CAP_DB if mse == 0 else float(min(PSNR_CAP_DB, 10 * np.log10(255.0 ** 2 / mse)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03) on gray."""
    if a.ndim == 3:
        a, b = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY), cv2.cvtColor(b, cv2.COLOR_BGR2GRAY)
    x, y = a.astype(np.float32), b.astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z):
        return cv2.GaussianBlur(z, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s.mean())


def mouth_box(points: np.ndarray, shape: Tuple[int, int], pad: float = 0.25) -> Tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around the 20 mouth landmarks, widened by `pad` of the mouth width."""
    lo, hi = points[MOUTH].min(0), points[MOUTH].max(0)
    margin = pad * (hi[0] - lo[0])
    x0, y0 = np.maximum(0, np.floor(lo - margin)).astype(int)
    x1 = int(min(shape[1], np.ceil(hi[0] + margin)))
    y1 = int(min(shape[0], np.ceil(hi[1] + margin)))
    return int(x0), int(y0), x1, y1


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of a crop scaled to 96 pixels wide (gray)."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    gray = cv2.resize(gray, (96, max(1, int(round(96 * gray.shape[0] / max(1, gray.shape[1]))))))
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def classify_openings(values: np.ndarray) -> np.ndarray:
    """'open' / 'closed' per frame from inner-lip openings, with a per-clip threshold.

    The threshold is Otsu's split of the clip's openings (the one that best separates two
    groups), never below 0.05 inter-ocular distances: lips closer than that are closed.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.array(["none"] * len(values))
    threshold = max(0.05, otsu_threshold(finite))
    return np.where(np.isnan(values), "none", np.where(values > threshold, "open", "closed"))


def otsu_threshold(values: np.ndarray, bins: int = 64) -> float:
    """The cut that maximises the between-group variance of `values` (Otsu 1979)."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centres)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


CLOSED_LABELS = {"closed", "close", "rest", "sil", "silence", "m", "b", "p", "mbp", "pbm", "bmp", "bilabial"}


def binary_label(label: str) -> str:
    """An annotation label (open/closed or a viseme name) as 'open' or 'closed'."""
    return "closed" if label.strip().lower() in CLOSED_LABELS else "open"


def annotation_scores(predicted: np.ndarray, annotations: Dict[int, str]) -> dict:
    """Accuracy of open/closed predictions against a person's labels, with a confusion table.

    annotations: frame index -> label. Frames out of range or without a face are skipped.
    The confusion table is {given label: {predicted: count}}.
    """
    confusion: Dict[str, Dict[str, int]] = {}
    hits = total = 0
    for frame, label in sorted(annotations.items()):
        if not 0 <= frame < len(predicted) or predicted[frame] == "none":
            continue
        guess = str(predicted[frame])
        row = confusion.setdefault(label, {"open": 0, "closed": 0})
        row[guess] += 1
        hits += guess == binary_label(label)
        total += 1
    return {"annotation_accuracy": hits / total if total else float("nan"), "annotated_frames": total,
            "confusion": confusion}


def log_mel_similarity(mel_a: np.ndarray, mel_b: np.ndarray) -> float:
    """Correlation of two log-mel spectrograms (80, n) over their common length: 1.0 = same sound."""
    n = min(mel_a.shape[1], mel_b.shape[1])
    if n < 2:
        return float("nan")
    return float(np.corrcoef(mel_a[:, :n].ravel(), mel_b[:, :n].ravel())[0, 1])


def bilabial_closure(phones: List[Tuple[str, float, float]], openings: np.ndarray, fps: float) -> Tuple[float, int]:
    """(share, count): of the p/b/m phones, the share during which (give or take a frame) the
    mouth is closed at least once (the dub test's rule, `closed_threshold`, on these openings). NaN share when none
    is heard or the face is missing there."""
    threshold = closed_threshold(openings)
    hits = total = 0
    for phone, start, end in phones:
        if phone not in BILABIALS:
            continue
        first, last = max(0, int(np.floor(start * fps)) - 1), min(len(openings), int(np.ceil(end * fps)) + 1)
        span = openings[first:last]
        if not np.isfinite(span).any():
            continue
        total += 1
        hits += bool(np.nanmin(span) <= threshold)
    return (hits / total if total else float("nan")), total
