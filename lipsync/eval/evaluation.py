"""evaluate.py's engine: measures one lip-sync result, optionally against the real footage
it should reproduce, the sound that drove it, and a person's open/closed annotations.

The face tracks come from the cached tracker; frame-level measures (PSNR, SSIM, sharpness,
the side-by-side video) read the videos in lockstep. The sound measures hold the result's
25 fps lower-face crops (12.5 kB a frame: about 1.1 GB for an hour) and score them in pieces.
"""
from __future__ import annotations

import contextlib
import csv
import logging
import math
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import InputError
from ..face.landmarks import openings
from ..face.track import TrackSettings, track_media
from ..io import audio as audio_lib
from ..io.files import atomic_output, check_output, write_file
from ..io.media import VIDEO_OUTPUTS, MediaInfo, VideoReader, VideoWriter, check_readable, probe
from ..io.phones import recognise
from ..progress import Progress
from ..io.source import FrameSource, replayed, source_index
from . import asd, avsync, metrics

log = logging.getLogger(__name__)

MAX_LAG = 15  # frames searched either way for offsets
AUDIO_MAX_LAG_S = 0.5


def _track(info: MediaInfo, detector: str, quiet: bool, fps: Optional[float] = None) -> np.ndarray:
    return track_media(info, fps or info.fps, TrackSettings(detector=detector, thorough=True),
                       progress=Progress(quiet)).landmarks


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


RESULT_BGR, REFERENCE_BGR, SOURCE_BGR = (200, 80, 0), (0, 120, 230), (60, 160, 60)


def _pixel_pass(result: MediaInfo, reference: Optional[MediaInfo], source: Optional[MediaInfo],
                ref_track: Optional[np.ndarray], res_open: np.ndarray, ref_open: Optional[np.ndarray],
                src_open: Optional[np.ndarray], n_source: int, side_by_side: Optional[str], quiet: bool) -> dict:
    """PSNR/SSIM over whole frames and mouth regions and mouth sharpness against the reference;
    writes the side-by-side video (result | reference | source, each labelled, over the curves).
    The source pane plays the source as lip_sync.py does (ping-pong looped over `n_source` frames)."""
    whole_psnr, whole_ssim, mouth_psnr, mouth_ssim, sharp_res, sharp_ref = [], [], [], [], [], []
    others = [(m, name) for m, name in ((reference, "reference"), (source, "source")) if m is not None]
    widths = [int(round(m.width * result.height / m.height)) // 2 * 2 for m, _ in others]
    n = len(res_open) if ref_open is None else min(len(res_open), len(ref_open))
    with contextlib.ExitStack() as stack:
        writer = curves = None
        if side_by_side:
            width = result.width + sum(widths)
            curves = _curve_image([res_open[:n], None if ref_open is None else ref_open[:n],
                                   None if src_open is None else src_open[:n]],
                                  [RESULT_BGR, REFERENCE_BGR, SOURCE_BGR], width, 120)
            tmp = stack.enter_context(atomic_output(side_by_side))
            writer = stack.enter_context(VideoWriter(tmp, width, result.height + curves.shape[0], result.fps,
                                                     audio_path=result.path if result.has_audio else None,
                                                     name=side_by_side))
        ref_frames = iter(VideoReader(reference, result.fps)) if reference is not None else None
        src_frames = stack.enter_context(FrameSource(source, result.fps, keep=replayed(n, n_source))) \
            if source is not None and writer is not None else None
        results = VideoReader(result)
        for i, a in enumerate(tqdm(results, total=n, desc="comparing frames", unit="frame", disable=quiet, leave=False)):
            if i >= n:
                break
            b = next(ref_frames, None) if ref_frames is not None else None
            if b is not None and a.shape == b.shape:
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
                panes = [_labelled(a, "result", RESULT_BGR)]
                for (m, name), w in zip(others, widths):
                    f = b if name == "reference" else src_frames(source_index(i, n_source))
                    f = np.zeros((m.height, m.width, 3), np.uint8) if f is None else f
                    pane = cv2.resize(f, (w, a.shape[0]), interpolation=cv2.INTER_AREA)
                    panes.append(_labelled(pane, name, REFERENCE_BGR if name == "reference" else SOURCE_BGR))
                strip = curves.copy()
                x = PLOT_LEFT + int(round(i / max(1, n - 1) * (strip.shape[1] - PLOT_LEFT - PLOT_RIGHT)))
                cv2.line(strip, (x, 0), (x, strip.shape[0] - 1), (0, 0, 0), 1)
                writer.write(np.vstack([np.hstack(panes), strip]))
    if reference is None:
        return {}

    def mean(v):
        return float(np.mean(v)) if v else float("nan")

    return {"psnr": mean(whole_psnr), "ssim": mean(whole_ssim), "psnr_mouth": mean(mouth_psnr),
            "ssim_mouth": mean(mouth_ssim),
            "sharpness_ratio": float(np.median(sharp_res) / max(1e-9, np.median(sharp_ref))) if sharp_ref else float("nan")}


def _labelled(image: np.ndarray, label: str, colour) -> np.ndarray:
    """A copy of `image` with `label` in a box at its top left corner."""
    out = image.copy()
    scale = max(0.5, image.shape[0] / 720)
    (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (w + 12, h + base + 10), (255, 255, 255), -1)
    cv2.putText(out, label, (6, h + 5), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, max(1, int(scale * 1.5)), cv2.LINE_AA)
    return out


PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 70, 20, 30, 40  # margins around a plot's axes, pixels


def _curve_image(series: List[Optional[np.ndarray]], colours, width: int, height: int) -> np.ndarray:
    """Line plot of several equally long series inside the margins of a white canvas (NaN gaps left open)."""
    canvas = np.full((height, width, 3), 255, np.uint8)
    _draw_curves(canvas, series, colours, (PLOT_LEFT, 8, width - PLOT_RIGHT, height - 8))
    return canvas


def _draw_curves(canvas: np.ndarray, series, colours, area) -> Tuple[float, float]:
    """Draws the series into area (x0, y0, x1, y1) on shared scales: frame i of every series at
    the same x (the longest spans the width); returns the vertical range (lo, hi)."""
    x0, y0, x1, y1 = area
    n = max((len(s) for s in series if s is not None), default=2)
    finite = [s[np.isfinite(s)] for s in series if s is not None and np.isfinite(s).any()]
    values = np.concatenate(finite) if finite else np.zeros(1)
    lo, hi = float(values.min()), float(values.max())
    hi = hi if hi > lo else lo + 1.0
    for s, colour in zip(series, colours):
        if s is None or len(s) < 2:
            continue
        xs = x0 + np.arange(len(s)) / max(n - 1, 1) * (x1 - x0)
        ys = y1 - (s - lo) / (hi - lo) * (y1 - y0)
        for j in range(len(s) - 1):
            if np.isfinite(ys[j]) and np.isfinite(ys[j + 1]):
                cv2.line(canvas, (int(xs[j]), int(ys[j])), (int(xs[j + 1]), int(ys[j + 1])), colour, 2, cv2.LINE_AA)
    return lo, hi


def _panel(title: str, y_label: str, series, names, colours, fps: float, width: int, height: int) -> np.ndarray:
    """One plot: title and legend above the axes, y ticks and label at the left, time in seconds below."""
    font, black = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    canvas = np.full((height, width, 3), 255, np.uint8)
    x0, y0, x1, y1 = PLOT_LEFT, PLOT_TOP, width - PLOT_RIGHT, height - PLOT_BOTTOM
    lo, hi = _draw_curves(canvas, series, colours, (x0, y0, x1, y1))
    cv2.rectangle(canvas, (x0, y0), (x1, y1), black, 1)
    cv2.putText(canvas, title, (x0, 18), font, 0.5, black, 1, cv2.LINE_AA)
    x = x1
    for name, colour, s in reversed(list(zip(names, colours, series))):  # legend, right-aligned above the axes
        if s is None:
            continue
        (w, _), _ = cv2.getTextSize(name, font, 0.45, 1)
        x -= w + 34
        cv2.line(canvas, (x, 14), (x + 22, 14), colour, 2, cv2.LINE_AA)
        cv2.putText(canvas, name, (x + 27, 18), font, 0.45, black, 1, cv2.LINE_AA)
    for v in np.linspace(lo, hi, 3):  # y ticks
        y = int(round(y1 - (v - lo) / (hi - lo) * (y1 - y0)))
        cv2.line(canvas, (x0 - 4, y), (x0, y), black, 1)
        cv2.putText(canvas, f"{v:.2f}", (x0 - 48, y + 4), font, 0.38, black, 1, cv2.LINE_AA)
    label = np.full((14, y1 - y0, 3), 255, np.uint8)  # the y label, turned upright along the axis
    cv2.putText(label, y_label[:max(1, (y1 - y0) // 7)], (2, 11), font, 0.38, black, 1, cv2.LINE_AA)
    canvas[y0:y1, 4:18] = np.rot90(label)
    n = max((len(s) for s in series if s is not None), default=1)
    seconds = max(n - 1, 1) / fps
    step = next(t for t in (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1e9) if seconds / t <= 10)
    for t in np.arange(0, seconds + 1e-9, step):  # x ticks in seconds
        x = int(round(x0 + t / seconds * (x1 - x0)))
        cv2.line(canvas, (x, y1), (x, y1 + 4), black, 1)
        cv2.putText(canvas, f"{t:g}", (x - 8, y1 + 17), font, 0.38, black, 1, cv2.LINE_AA)
    cv2.putText(canvas, "time (s)", ((x0 + x1) // 2 - 25, height - 6), font, 0.42, black, 1, cv2.LINE_AA)
    return canvas


def write_plot(path: str, res_open: np.ndarray, ref_open: Optional[np.ndarray], src_open: Optional[np.ndarray],
               envelope: Optional[np.ndarray], lmd_per_frame: Optional[np.ndarray], fps: float) -> None:
    """A PNG of up to three plots over time: mouth opening (result, reference, source), the
    sound's level, and the per-frame mouth landmark distance to the reference."""
    width, height = 1000, 220
    panels = [_panel("mouth opening", "lip gap (eye dist.)", [res_open, ref_open, src_open],
                     ["result", "reference", "source"], [RESULT_BGR, REFERENCE_BGR, SOURCE_BGR], fps, width, height)]
    if envelope is not None:
        panels.append(_panel("the result's sound", "log-mel level", [envelope], ["sound level"], [(60, 60, 60)],
                             fps, width, height))
    if lmd_per_frame is not None:
        panels.append(_panel("mouth landmark distance to the reference", "% of eye distance", [lmd_per_frame],
                             ["distance"], [(40, 40, 200)], fps, width, height))
    _, buf = cv2.imencode(".png", np.vstack(panels))
    write_file(path, buf.tobytes())


def _check_video(path: str, what: str, result: MediaInfo) -> MediaInfo:
    """Probes a video to compare with the result; warns where frame rate or length differ."""
    other = probe(path)
    if not other.has_video or other.is_image:
        raise InputError(f"{path}: not a video")
    if abs(other.fps - result.fps) > 0.01:
        log.warning("%s: the %s's frame rate %g differs from the result's %g: it is resampled to %g",
                    path, what, other.fps, result.fps, result.fps)
    if what == "reference" and result.duration > 0 and abs(other.duration - result.duration) > 0.1 * result.duration:
        log.warning("%s: the %s lasts %.1f s, the result %.1f s: only their common frames are compared",
                    path, what, other.duration, result.duration)
    return other


def evaluate(*, video: str, reference: Optional[str] = None, audio: Optional[str] = None,
             source: Optional[str] = None, annotations: Optional[str] = None, plot: Optional[str] = None,
             side_by_side: Optional[str] = None, detector: str = "hog", speaking: bool = True,
             phones: bool = True, quiet: bool = False) -> dict:
    """Measures a lip-sync result. Returns a flat dict of the figures (see the README).

    reference: the real footage the result should reproduce; audio: the sound that drove it;
    source: the video that was dubbed (result frame i made from its frame i, ping-pong looped
    when the result is longer), for leakage. speaking: run the learned speaking scorer;
    phones: recognise the result's phones for bilabial_closure (needs pocketsphinx).
    """
    info = probe(video)
    if not info.has_video or info.is_image:
        raise InputError(f"{video}: not a video")
    # every check of the inputs before any long work
    if side_by_side and not (reference or source):
        raise InputError("a side-by-side video needs a reference or source video to show next to the result")
    inputs = [video, reference, audio, source, annotations]
    if plot:
        check_output(plot, "plot", extensions=(".png",), inputs=inputs)
    if side_by_side:
        check_output(side_by_side, "side-by-side video", extensions=VIDEO_OUTPUTS, inputs=inputs)
    if audio and not info.has_audio:
        raise InputError(f"{video}: has no sound track to compare with {audio}")
    ref_info = _check_video(reference, "reference", info) if reference else None
    src_info = _check_video(source, "source", info) if source else None
    labels = read_annotations(annotations) if annotations else None
    mel_drv = audio_lib.melspectrogram(audio_lib.load_audio(audio)) if audio else None

    res_track = _track(info, detector, quiet)
    n_res = len(res_track)
    res_open = openings(res_track)
    out: dict = {"video": video, "frames": n_res, "fps": info.fps,
                 "frames_without_face": int(np.isnan(res_track[:, 0, 0]).sum())}
    envelope = None
    if info.has_audio:
        wav = audio_lib.load_audio(video)
        mel_res = audio_lib.melspectrogram(wav)
        envelope = sound_envelope(mel_res, info.fps, n_res)
        crops = _crops(info, res_track)
        face = avsync.at_rate(np.isfinite(res_open), info.fps, len(crops))
        offset = avsync.sound_offset(crops, wav, avsync.at_rate(res_open, info.fps, len(crops)), face=face,
                                     mel=mel_res) \
            if face.any() else avsync.Offset(None, 0.0, float("nan"))
        out["av_offset_frames"] = None if offset.frames is None else int(round(offset.frames * info.fps / asd.FPS))
        out["av_sync_confidence"], out["sync_score"] = offset.confidence, offset.score
        if speaking:
            logits = avsync.speaking(avsync.load_scorer(), wav, crops) if face.any() else np.zeros(0)
            logits = logits[face[:len(logits)]]
            out["speaking_score"] = float(np.mean(logits)) if len(logits) else float("nan")
            out["speaking_share"] = float(np.mean(logits > 0)) if len(logits) else float("nan")
        if phones:
            out.update(_bilabials(wav, res_open, info.fps))
    out["offset_frames"], out["sync_confidence"] = out.get("av_offset_frames"), out.get("av_sync_confidence", 0.0)

    ref_open = src_open = lmd_per_frame = ref_track = None
    if ref_info is not None:
        ref_track = _track(ref_info, detector, quiet, info.fps)
        n = min(n_res, len(ref_track))
        ref_open = openings(ref_track)
        out["lmd"], lmd_per_frame = metrics.landmark_distance(res_track[:n], ref_track[:n])
        out["mouth_corr"] = metrics.pearson(res_open[:n], ref_open[:n])
        out["closed_f1"] = metrics.closed_f1(res_open[:n], ref_open[:n])
        lag, corr, conf = metrics.best_lag(res_open[:n], ref_open[:n], MAX_LAG)
        out["offset_frames"], out["sync_confidence"], out["best_lag_corr"] = lag, conf, corr
    n_source = 0
    if src_info is not None:
        src_open_raw = openings(_track(src_info, detector, quiet, info.fps))
        n_source = len(src_open_raw)
        src_open = src_open_raw[[source_index(i, n_source) for i in range(n_res)]] if n_source \
            else np.full(n_res, np.nan)
        out["leakage"] = metrics.pearson(res_open, src_open)
    if ref_info is not None or side_by_side:
        out.update(_pixel_pass(info, ref_info, src_info, ref_track, res_open, ref_open, src_open, n_source,
                               side_by_side, quiet))

    if mel_drv is not None:
        out["audio_similarity"] = metrics.log_mel_similarity(mel_res, mel_drv)
        steps = int(AUDIO_MAX_LAG_S * audio_lib.MEL_FRAMES_PER_SECOND)
        lag, _, _ = metrics.best_lag(mel_res.mean(0), mel_drv.mean(0), steps)
        out["audio_offset_ms"] = None if lag is None else lag * 1000.0 / audio_lib.MEL_FRAMES_PER_SECOND

    if labels is not None:
        out.update(metrics.annotation_scores(metrics.classify_openings(res_open), labels))

    if plot:
        write_plot(plot, res_open, ref_open, src_open, envelope, lmd_per_frame, info.fps)
    return {k: _plain(v) for k, v in out.items()}


def _crops(info: MediaInfo, track: np.ndarray) -> np.ndarray:
    """The result's lower face at 25 fps, as the judge and the speaking scorer read it."""
    if not np.isfinite(track[:, 0, 0]).any():
        return np.zeros((0, asd.CROP_SIZE, asd.CROP_SIZE), np.uint8)
    return avsync.face_crops(VideoReader(info, asd.FPS, exact=False), track, info.fps)


def _bilabials(wav: np.ndarray, res_open: np.ndarray, fps: float) -> dict:
    try:
        heard = recognise(wav[:int(len(res_open) / fps * audio_lib.SAMPLE_RATE)])
    except ImportError:
        log.warning("bilabial_closure needs pocketsphinx (pip install pocketsphinx): skipped")
        return {}
    except (RuntimeError, OSError) as exc:
        log.warning("bilabial_closure skipped: pocketsphinx failed (%s)", exc)
        return {}
    share, count = metrics.bilabial_closure(heard, res_open, fps)
    return {"bilabial_closure": share, "bilabials": count}


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
