"""The dub test over a folder of talking-face clips, written up as a markdown table.

Each clip is cut in two at its middle frame; lip_sync.py gets the first half (with its own
sound, silent, or one still frame) and the second half's sound, and its output is measured
against the real second half with `lipsync.eval.evaluation`. "static" replays the first half
unchanged: the floor any method must beat.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import InputError
from ..face.landmarks import openings
from ..face.track import TrackSettings, track_media
from ..io.files import write_file
from ..io.media import VideoReader, ffmpeg_command, probe
from ..progress import Progress
from . import metrics
from .evaluation import evaluate

MODES = ("speech", "silent", "image")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m4v")


def _ffmpeg(*args: str) -> None:
    proc = subprocess.run(ffmpeg_command("-y", *args),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise InputError(f"ffmpeg failed while cutting a clip: {proc.stderr.decode(errors='replace').strip()[-300:]}")


def split_clip(clip: str, work: str, mode: str):
    """Cuts `clip` for the dub test.

    Returns (input for lip_sync: first half as video or still, first half as a video,
    second half's sound, real second half).
    """
    info = probe(clip)
    if not info.has_audio:
        raise InputError(f"{clip}: has no sound track (the dub test needs the clip's own speech)")
    rate = f"{info.fps}"
    half = sum(1 for _ in VideoReader(info)) // 2
    t0 = half / info.fps
    first = os.path.join(work, "first.mp4")
    sound = (["-af", f"atrim=end={t0:.4f},asetpts=PTS-STARTPTS", "-c:a", "aac", "-b:a", "192k"]
             if mode == "speech" else ["-an"])
    _ffmpeg("-i", clip, "-vf", f"fps={rate},trim=end_frame={half},setpts=PTS-STARTPTS", *sound,
            "-c:v", "libx264", "-crf", "10", "-pix_fmt", "yuv420p", "-r", rate, first)
    given = first
    if mode == "image":
        given = os.path.join(work, "first.png")
        for i, frame in enumerate(VideoReader(probe(first))):
            if i == half // 2:
                cv2.imwrite(given, frame)
                break
    second = os.path.join(work, "second.wav")
    _ffmpeg("-i", clip, "-vn", "-af", f"atrim=start={t0:.4f},asetpts=PTS-STARTPTS", "-ac", "1", "-ar", "16000", second)
    real = os.path.join(work, "real_second.mp4")
    _ffmpeg("-i", clip, "-an", "-vf", f"fps={rate},trim=start_frame={half},setpts=PTS-STARTPTS", "-c:v", "libx264",
            "-crf", "10", "-pix_fmt", "yuv420p", "-r", rate, real)
    return given, first, second, real


def static_floor(first_half: str, real: str) -> dict:
    """corr and lmd of the first half replayed unchanged against the real second half."""
    a, b = probe(first_half), probe(real)
    ta = track_media(a, a.fps, TrackSettings(thorough=True), progress=Progress(True)).landmarks
    tb = track_media(b, b.fps, TrackSettings(thorough=True), progress=Progress(True)).landmarks
    replay = ta[np.arange(len(tb)) % len(ta)]
    return {"corr": metrics.pearson(openings(replay), openings(tb)),
            "lmd": metrics.landmark_distance(replay, tb)[0]}


def dub_test(clip: str, mode: str = "speech", extra_args: Optional[List[str]] = None) -> dict:
    """Runs lip_sync on one clip in one mode and measures it. Returns the figures."""
    with tempfile.TemporaryDirectory(prefix="lipsync-dub-") as work:
        given, first, second, real = split_clip(clip, work, mode)
        out = os.path.join(work, "out.mp4")
        cmd = [sys.executable, "-c", "import sys; from lipsync.cli import lip_sync_main; sys.exit(lip_sync_main())",
               "--video_path", given, "--audio_path", second, "--outfile", out, "--quiet", *(extra_args or [])]
        start = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        seconds = time.time() - start
        row = {"clip": os.path.basename(clip), "mode": mode, "seconds": round(seconds, 1)}
        if proc.returncode != 0:
            row["error"] = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            return row
        figures = evaluate(video=out, reference=real, source=None if mode == "image" else first, speaking=False,
                           quiet=True)
        row.update({k: figures.get(k) for k in ("mouth_corr", "lmd", "offset_frames", "sharpness_ratio", "closed_f1",
                                                "leakage", "av_offset_frames", "sync_score", "bilabial_closure")})
        floor = static_floor(first, real)
        row.update({"static_corr": floor["corr"], "static_lmd": floor["lmd"]})
        return row


def _cell(v, fmt="{:.2f}"):
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)


def markdown_table(rows: List[dict], command: str) -> str:
    lines = ["| clip | mode | corr | static corr | lmd | static lmd | lag | sharpness | closed F1 | leak | "
             "sound offset | sync score | p/b/m closed | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['clip']} | {r['mode']} | failed: {r['error']} |" + " |" * 10 + f" {r['seconds']} |")
            continue
        lines.append(f"| {r['clip']} | {r['mode']} | {_cell(r['mouth_corr'])} | {_cell(r['static_corr'])} | "
                     f"{_cell(r['lmd'], '{:.1f}')} | {_cell(r['static_lmd'], '{:.1f}')} | {_cell(r['offset_frames'], '{}')} | "
                     f"{_cell(r['sharpness_ratio'])} | {_cell(r.get('closed_f1'))} | {_cell(r.get('leakage'))} | "
                     f"{_cell(r.get('av_offset_frames'), '{}')} | {_cell(r.get('sync_score'))} | "
                     f"{_cell(r.get('bilabial_closure'))} | {r['seconds']} |")
    ok = [r for r in rows if "error" not in r and r.get("mouth_corr") is not None]
    if ok:
        def mean(key):
            vals = [r[key] for r in ok if r.get(key) is not None]
            return float(np.mean(vals)) if vals else None
        lines.append(f"| **mean** | | {_cell(mean('mouth_corr'))} | {_cell(mean('static_corr'))} | "
                     f"{_cell(mean('lmd'), '{:.1f}')} | {_cell(mean('static_lmd'), '{:.1f}')} | | "
                     f"{_cell(mean('sharpness_ratio'))} | {_cell(mean('closed_f1'))} | {_cell(mean('leakage'))} | | "
                     f"{_cell(mean('sync_score'))} | {_cell(mean('bilabial_closure'))} | |")
    return ("# Dub-test benchmark\n\n"
            "Each clip is cut at its middle frame; the first half (with its sound, silent, or one still frame) is "
            "lip-synced to the second half's sound and compared with the real second half. corr: correlation of the "
            "inner-lip opening with the real one (higher is better); lmd: mouth landmark distance in % of the "
            "inter-ocular distance (lower is better); lag: frames the result's mouth is late; static: the first half "
            "replayed unchanged; closed F1: agreement of the closed-mouth frames with the real ones; leak: "
            "correlation of the result's mouth with the first half's own (0 = follows the new sound, 1 = replays "
            "the old mouth); sound offset: frames the result's sound is late on its mouth (the learned judge and the "
            "loudness curve together); sync score: how well mouth and sound go together as they play (-1..1, higher "
            "is better); p/b/m closed: share of the p, b and m "
            "heard in the sound on which the mouth closes.\n\n"
            f"Command: `{command}`\n\n" + "\n".join(lines) + "\n")


def benchmark(clips_dir: str, out_md: str, *, modes=("speech",), extra_args=None, quiet=False,
              command: Optional[str] = None) -> List[dict]:
    """Runs the dub test over every video in `clips_dir` and writes the table to `out_md`.

    `command` is the command line quoted in the table (default: the equivalent evaluate.py call).
    """
    if not os.path.isdir(clips_dir):
        raise InputError(f"{clips_dir}: not a folder of clips")
    clips = sorted(os.path.join(clips_dir, f) for f in os.listdir(clips_dir) if f.lower().endswith(VIDEO_EXTENSIONS))
    if not clips:
        raise InputError(f"{clips_dir}: no video clips found")
    for mode in modes:
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
    rows = []
    for clip in tqdm(clips, desc="benchmark", unit="clip", disable=quiet):
        for mode in modes:
            try:
                rows.append(dub_test(clip, mode, extra_args))
            except InputError as exc:
                rows.append({"clip": os.path.basename(clip), "mode": mode, "seconds": 0, "error": str(exc)})
    command = command or f"python evaluate.py benchmark {shlex.quote(clips_dir)} --out {shlex.quote(out_md)}"
    write_file(out_md, markdown_table(rows, command))
    return rows
