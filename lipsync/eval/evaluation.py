"""evaluate.py's engine: measures one lip-sync result, optionally against the real footage
it should reproduce, the sound that drove it, and a person's open/closed annotations.

Everything streams: the face tracks come from the cached tracker, and frame-level measures
(PSNR, SSIM, sharpness, the side-by-side video) read the two videos in lockstep.
"""
from __future__ import annotations

import contextlib
import csv
import math
from typing import Dict, List, Optional

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import InputError
from ..face.landmarks import openings
from ..face.track import TrackSettings, track_media
from ..io import audio as audio_lib
from ..io.media import MediaInfo, VideoReader, VideoWriter, atomic_output, check_readable, probe, write_file
from ..progress import Progress
from . import metrics

MAX_LAG = 15  # frames searched either way for offsets
DETREND_S = 0.6  # sound/mouth sync is judged on changes faster than this
AUDIO_MAX_LAG_S = 0.5


def _track(info: MediaInfo, detector: str, quiet: bool) -> np.ndarray:
    return track_media(info, info.fps, TrackSettings(detector=detector), progress=Progress(quiet)).landmarks


def read_annotations(path: str) -> Dict[int, str]:
    """A CSV of `frame,label` rows (a header row is allowed) -> {frame: label}."""
    check_readable(path, "annotations")
    out: Dict[int, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), 1):
            if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
                continue
            if len(row) < 2:
                raise InputError(f"{path}: line {line_no}: expected 'frame,label', got {','.join(row)!r}")
            try:
                frame = int(row[0])
            except ValueError:
                if line_no == 1:
                    continue  # a header
                raise InputError(f"{path}: line {line_no}: frame {row[0]!r} is not a whole number") from None
            out[frame] = row[1].strip()
    if not out:
        raise InputError(f"{path}: no 'frame,label' rows")
    return out


def sound_envelope(mel: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """Log-mel level of the whole speech band around each video frame; mel: (80, n_steps)."""
    return audio_lib.frame_envelope(mel, fps, n_frames, slice(0, audio_lib.N_MELS))


def _pixel_pass(result: MediaInfo, reference: MediaInfo, ref_track: np.ndarray, n: int,
                side_by_side: Optional[str], curves: Optional[np.ndarray], quiet: bool) -> dict:
    """PSNR/SSIM over whole frames and mouth regions, mouth sharpness; writes the side-by-side video."""
    whole_psnr, whole_ssim, mouth_psnr, mouth_ssim, sharp_res, sharp_ref = [], [], [], [], [], []
    ref_w = int(round(reference.width * result.height / reference.height)) // 2 * 2
    with contextlib.ExitStack() as stack:
        writer = None
        if side_by_side:
            tmp = stack.enter_context(atomic_output(side_by_side))
            writer = stack.enter_context(VideoWriter(tmp, result.width + ref_w, result.height + curves.shape[0],
                                                     result.fps, audio_path=result.path if result.has_audio else None))
        pairs = zip(VideoReader(result), VideoReader(reference, result.fps))
        for i, (a, b) in enumerate(tqdm(pairs, total=n, desc="comparing frames", unit="frame", disable=quiet, leave=False)):
            if i >= n:
                break
            if a.shape == b.shape:
                whole_psnr.append(metrics.psnr(a, b))
                whole_ssim.append(metrics.ssim(a, b))
                p = ref_track[i]
                box = None if np.isnan(p[0, 0]) else metrics.mouth_box(p, a.shape[:2])
                if box and box[2] - box[0] > 4 and box[3] - box[1] > 4:
                    x0, y0, x1, y1 = box
                    ca, cb = a[y0:y1, x0:x1], b[y0:y1, x0:x1]
                    mouth_psnr.append(metrics.psnr(ca, cb))
                    mouth_ssim.append(metrics.ssim(ca, cb))
                    sharp_res.append(metrics.sharpness(ca))
                    sharp_ref.append(metrics.sharpness(cb))
            if writer is not None:
                writer.write(_side_by_side_frame(a, b, ref_w, curves, i, n))

    def mean(v):
        return float(np.mean(v)) if v else float("nan")

    return {"psnr": mean(whole_psnr), "ssim": mean(whole_ssim), "psnr_mouth": mean(mouth_psnr),
            "ssim_mouth": mean(mouth_ssim),
            "sharpness_ratio": float(np.median(sharp_res) / max(1e-9, np.median(sharp_ref))) if sharp_ref else float("nan")}


def _curve_image(series: List[np.ndarray], colours, width: int, height: int) -> np.ndarray:
    """Line plot of several equally long series on a white canvas (NaN gaps left open)."""
    canvas = np.full((height, width, 3), 255, np.uint8)
    finite = np.concatenate([s[np.isfinite(s)] for s in series if s is not None and np.isfinite(s).any()] or [np.zeros(1)])
    lo, hi = float(finite.min()), float(finite.max())
    hi = hi if hi > lo else lo + 1.0
    for s, colour in zip(series, colours):
        if s is None or len(s) < 2:
            continue
        xs = np.linspace(4, width - 5, len(s))
        ys = height - 5 - (s - lo) / (hi - lo) * (height - 10)
        for j in range(len(s) - 1):
            if np.isfinite(ys[j]) and np.isfinite(ys[j + 1]):
                cv2.line(canvas, (int(xs[j]), int(ys[j])), (int(xs[j + 1]), int(ys[j + 1])), colour, 2, cv2.LINE_AA)
    return canvas


def _side_by_side_frame(a: np.ndarray, b: np.ndarray, ref_w: int, curves: np.ndarray, i: int, n: int) -> np.ndarray:
    """Result | reference (scaled to the result's height) above the opening curves with a cursor at frame i."""
    right = cv2.resize(b, (ref_w, a.shape[0]), interpolation=cv2.INTER_AREA)
    strip = curves.copy()
    x = 4 + int(round(i / max(1, n - 1) * (strip.shape[1] - 9)))
    cv2.line(strip, (x, 0), (x, strip.shape[0] - 1), (0, 0, 0), 1)
    cv2.putText(strip, "result", (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (200, 80, 0), 1, cv2.LINE_AA)
    cv2.putText(strip, "reference", (8, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 120, 230), 1, cv2.LINE_AA)
    return np.vstack([np.hstack([a, right]), strip])


def write_plot(path: str, res_open: np.ndarray, ref_open: Optional[np.ndarray], envelope: Optional[np.ndarray],
               lmd_per_frame: Optional[np.ndarray], fps: float) -> None:
    """A PNG with three panels: mouth opening (result, reference), sound envelope, per-frame LMD."""
    width, panel_h = 1000, 180
    panels = []
    for title, series, colours in (("mouth opening (blue: result, orange: reference)", [res_open, ref_open],
                                    [(200, 80, 0), (0, 120, 230)]),
                                   ("sound envelope (log-mel level)", [envelope], [(60, 60, 60)]),
                                   ("mouth landmark distance per frame (% inter-ocular)", [lmd_per_frame], [(40, 40, 200)])):
        img = _curve_image(series, colours, width, panel_h)
        cv2.putText(img, title, (8, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(img)
    sheet = np.vstack(panels)
    cv2.putText(sheet, f"{len(res_open)} frames, {len(res_open) / fps:.1f} s", (width - 200, sheet.shape[0] - 8),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    _, buf = cv2.imencode(".png", sheet)
    write_file(path, buf.tobytes())


def evaluate(*, video: str, reference: Optional[str] = None, audio: Optional[str] = None,
             annotations: Optional[str] = None, plot: Optional[str] = None, side_by_side: Optional[str] = None,
             detector: str = "hog", quiet: bool = False) -> dict:
    """Measures a lip-sync result. Returns a flat dict of the figures (see the README)."""
    info = probe(video)
    if not info.has_video or info.is_image:
        raise InputError(f"{video}: not a video")
    # every check of the inputs before any long work
    if side_by_side and not reference:
        raise InputError("a side-by-side video needs a reference video to show next to the result")
    if audio and not info.has_audio:
        raise InputError(f"{video}: has no sound track to compare with {audio}")
    ref_info = probe(reference) if reference else None
    if ref_info is not None:
        if not ref_info.has_video or ref_info.is_image:
            raise InputError(f"{reference}: not a video")
        if abs(ref_info.fps - info.fps) > 0.01:
            raise InputError(f"{reference}: frame rate {ref_info.fps:g} differs from the result's {info.fps:g}")
    labels = read_annotations(annotations) if annotations else None
    mel_drv = audio_lib.melspectrogram(audio_lib.load_audio(audio)) if audio else None

    res_track = _track(info, detector, quiet)
    n_res = len(res_track)
    res_open = openings(res_track)
    out: dict = {"video": video, "frames": n_res, "fps": info.fps,
                 "frames_without_face": int(np.isnan(res_track[:, 0, 0]).sum())}
    envelope = mel_res = None
    if info.has_audio:
        mel_res = audio_lib.melspectrogram(audio_lib.load_audio(video))
        envelope = sound_envelope(mel_res, info.fps, n_res)
        width = max(3, int(round(DETREND_S * info.fps)))
        lag, _, conf = metrics.best_lag(metrics.detrend(envelope, width), metrics.detrend(res_open, width), MAX_LAG)
        out["av_offset_frames"], out["av_sync_confidence"] = lag, conf
    out["offset_frames"], out["sync_confidence"] = out.get("av_offset_frames"), out.get("av_sync_confidence", 0.0)

    ref_open = lmd_per_frame = None
    if ref_info is not None:
        ref_track = _track(ref_info, detector, quiet)
        n = min(n_res, len(ref_track))
        ref_open = openings(ref_track)
        out["lmd"], lmd_per_frame = metrics.landmark_distance(res_track[:n], ref_track[:n])
        out["mouth_corr"] = metrics.pearson(res_open[:n], ref_open[:n])
        lag, corr, conf = metrics.best_lag(res_open[:n], ref_open[:n], MAX_LAG)
        out["offset_frames"], out["sync_confidence"], out["best_lag_corr"] = lag, conf, corr
        curves = None
        if side_by_side:
            width = info.width + int(round(ref_info.width * info.height / ref_info.height)) // 2 * 2
            curves = _curve_image([res_open[:n], ref_open[:n]], [(200, 80, 0), (0, 120, 230)], width, 120)
        out.update(_pixel_pass(info, ref_info, ref_track, n, side_by_side, curves, quiet))

    if mel_drv is not None:
        out["audio_similarity"] = metrics.log_mel_similarity(mel_res, mel_drv)
        steps = int(AUDIO_MAX_LAG_S * audio_lib.MEL_FRAMES_PER_SECOND)
        lag, _, _ = metrics.best_lag(mel_res.mean(0), mel_drv.mean(0), steps)
        out["audio_offset_ms"] = None if lag is None else lag * 1000.0 / audio_lib.MEL_FRAMES_PER_SECOND

    if labels is not None:
        out.update(metrics.annotation_scores(metrics.classify_openings(res_open), labels))

    if plot:
        write_plot(plot, res_open, ref_open, envelope, lmd_per_frame, info.fps)
    return {k: _plain(v) for k, v in out.items()}


def _plain(v):
    """JSON-friendly: numpy scalars to Python, NaN to None."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (np.floating, float)):
        return None if not math.isfinite(float(v)) else round(float(v), 4)
    if isinstance(v, np.integer):
        return int(v)
    return v


def format_report(result: dict) -> str:
    """The figures as an aligned two-column table."""
    lines = []
    for key, value in result.items():
        if key == "confusion":
            lines.append("confusion (given label -> predicted open / closed):")
            for label, row in value.items():
                lines.append(f"  {label:16} {row.get('open', 0):5d} {row.get('closed', 0):7d}")
            continue
        lines.append(f"{key:22} {'-' if value is None else value}")
    return "\n".join(lines)
