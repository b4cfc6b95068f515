#!/usr/bin/env python3
"""Speed and memory of lip_sync.py against ffmpeg's own re-encode of the same clip.

Makes 512x512 25 fps talking-head clips of each --durations length from ../shared/data
(retalk_2 looped, with its own sound) and a speech track as long (the radio recordings
looped), then runs, in turn, --repeats times each:

  ffmpeg      decode + x264 crf 18 re-encode of the clip, muxed with the speech
  first       lip_sync.py --personalize off with an empty face-track cache
  cached      the same again, the face track now cached

and prints medians of wall time, frames per second and peak RSS (of the largest single
process: lip_sync.py itself, not its ffmpeg children), the ratio to ffmpeg, and the
memory growth from the shortest to the longest clip. --personalize_run adds one run of
the default --personalize auto on the shortest clip (the personal style fitted on its own speech).

    python benchmarks/speed.py                      # 60 s and 300 s, a few minutes
    python benchmarks/speed.py --durations 60 --repeats 5
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lipsync.io.media import ffmpeg_command  # noqa: E402

DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
SOURCE_VIDEO = os.path.join(DATA, "video", "retalk_2.mp4")
SOURCE_AUDIO = os.path.join(DATA, "audio", "st_RD_Radio31_000.wav")
SIZE, FPS = 512, 25


def make_inputs(work: str, seconds: int) -> tuple:
    """(video, speech) of `seconds` each, made once and kept in `work`."""
    video = os.path.join(work, f"talk_{seconds}s.mp4")
    speech = os.path.join(work, f"speech_{seconds}s.wav")
    ff = ffmpeg_command("-y")
    if not os.path.exists(video):
        subprocess.run([*ff, "-stream_loop", "-1", "-i", SOURCE_VIDEO, "-t", str(seconds),
                        "-vf", f"scale={SIZE}:{SIZE},fps={FPS}", "-c:v", "libx264", "-crf", "18",
                        "-pix_fmt", "yuv420p", "-c:a", "aac", video + ".tmp.mp4"], check=True)
        os.replace(video + ".tmp.mp4", video)
    if not os.path.exists(speech):
        subprocess.run([*ff, "-stream_loop", "-1", "-i", SOURCE_AUDIO, "-t", str(seconds), "-ac", "1",
                        "-ar", "16000", speech + ".tmp.wav"], check=True)
        os.replace(speech + ".tmp.wav", speech)
    return video, speech


def timed(cmd: list, env: dict = None) -> tuple:
    """(wall seconds, peak RSS in MB of the largest process) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {shlex.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--durations", type=int, nargs="+", default=[60, 300], help="clip lengths in seconds")
    p.add_argument("--repeats", type=int, default=3, help="runs of each command on the shortest clip")
    p.add_argument("--long_repeats", type=int, default=1, help="runs of each command on the longer clips")
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "lipsync-bench"),
                   help="folder for the generated inputs (kept) and outputs")
    p.add_argument("--extra", default="", help="extra lip_sync.py arguments, e.g. \"--model warp\"")
    p.add_argument("--personalize_run", action="store_true",
                   help="also time --personalize auto on the shortest clip")
    args = p.parse_args()
    for path in (SOURCE_VIDEO, SOURCE_AUDIO):
        if not os.path.exists(path):
            print(f"error: {path}: not found (the benchmark needs ../shared/data)", file=sys.stderr)
            return 2
    os.makedirs(args.work, exist_ok=True)
    out = os.path.join(args.work, "out.mp4")
    rows, peaks = [], {}
    for k, seconds in enumerate(sorted(args.durations)):
        video, speech = make_inputs(args.work, seconds)
        n_frames = seconds * FPS
        repeats = args.repeats if k == 0 else args.long_repeats
        ffmpeg_cmd = ffmpeg_command("-y", "-i", video, "-i", speech, "-map", "0:v", "-map", "1:a", "-c:v", "libx264",
                                    "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", out)
        sync_cmd = [sys.executable, os.path.join(ROOT, "lip_sync.py"), "--video_path", video, "--audio_path", speech,
                    "--outfile", out, "--personalize", "off", "--quiet", *shlex.split(args.extra)]
        runs = {"ffmpeg": [], "first": [], "cached": []}
        for r in range(repeats):
            cache = tempfile.mkdtemp(prefix="cache-", dir=args.work)
            env = dict(os.environ, LIPSYNC_CACHE_DIR=cache)
            runs["ffmpeg"].append(timed(ffmpeg_cmd))
            runs["first"].append(timed(sync_cmd, env))
            runs["cached"].append(timed(sync_cmd, env))
            shutil.rmtree(cache, ignore_errors=True)
            print(f"{seconds} s, run {r + 1}/{repeats}: " + ", ".join(
                f"{name} {v[-1][0]:.1f} s / {v[-1][1]:.0f} MB" for name, v in runs.items()), file=sys.stderr)
        base = statistics.median(w for w, _ in runs["ffmpeg"])
        for name, values in runs.items():
            wall = statistics.median(w for w, _ in values)
            rss = statistics.median(m for _, m in values)
            rows.append((seconds, name, wall, n_frames / wall, rss, wall / base, len(values)))
            if name != "ffmpeg":
                peaks.setdefault(name, []).append((seconds, rss))
        if k == 0 and args.personalize_run:
            cache = tempfile.mkdtemp(prefix="cache-", dir=args.work)
            env = dict(os.environ, LIPSYNC_CACHE_DIR=cache)
            cmd = [c if c != "off" else "auto" for c in sync_cmd]
            wall, rss = timed(cmd, env)
            rows.append((seconds, "personalize auto, first", wall, n_frames / wall, rss, wall / base, 1))
            shutil.rmtree(cache, ignore_errors=True)
    print(f"\nlip_sync.py {' '.join(['--personalize off', args.extra]).strip()}, "
          f"{SIZE}x{SIZE} {FPS} fps, {os.cpu_count()} CPUs; medians\n")
    print("| clip | run | runs | wall s | frames/s | peak RSS MB | x ffmpeg |")
    print("|---|---|---|---|---|---|---|")
    for seconds, name, wall, fps, rss, ratio, n in rows:
        print(f"| {seconds} s | {name} | {n} | {wall:.1f} | {fps:.0f} | {rss:.0f} | {ratio:.2f} |")
    for name, values in peaks.items():
        if len(values) > 1:
            (s0, m0), (s1, m1) = values[0], values[-1]
            print(f"\npeak RSS growth {s0} s -> {s1} s ({name}): {m0:.0f} -> {m1:.0f} MB ({100 * (m1 / m0 - 1):+.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
