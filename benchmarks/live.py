#!/usr/bin/env python3
"""Live mode in real time: frames per second, latency, dropped frames and CPU use.

Prepares the avatar of a 512x512 25 fps talking-head clip from ../shared/data (benchmarks/
speed.py's, 10 s), then streams --seconds of speech (the radio recordings looped) into it
at real-time speed, as `lip_sync.py --live --audio_path FILE` does, and writes MPEG-TS to
a temporary file. Prints, for each --lookahead, the frames per second sustained, the
latency from a chunk of sound in to the frame that shows it out (median and 95th
percentile), the frames dropped, and the CPU used (this process and ffmpeg's, in cores).
--speed 0 feeds the sound as fast as it goes instead: the throughput, without a clock.

    python benchmarks/live.py                         # 60 s, about a minute per look-ahead
    python benchmarks/live.py --seconds 20 --lookahead 0.26 0.2 0.12
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from speed import make_inputs  # noqa: E402

from lipsync.io.realtime import SoundInput, StreamWriter  # noqa: E402
from lipsync.live import MAX_BACKLOG, Avatar, run_live  # noqa: E402
from lipsync.progress import Progress  # noqa: E402


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60, help="seconds of sound streamed")
    ap.add_argument("--lookahead", type=float, nargs="+", default=[None],
                    help="look-aheads to measure, seconds (default: the model's full one)")
    ap.add_argument("--speed", type=float, default=1.0, help="times real time the sound is fed (0: at once)")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "lipsync-bench"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    video, _ = make_inputs(a.work, 10)
    _, speech = make_inputs(a.work, a.seconds)
    avatar = Avatar.prepare(video, personalize="off", quiet=True)
    print(f"avatar {avatar.width}x{avatar.height} at {avatar.fps:g} fps, {len(avatar.frames)} frames looped, "
          f"renderer {avatar.renderer_name}; {a.seconds} s of sound at {a.speed:g} x real time")
    print("| look-ahead | frames/s | latency median | latency p95 | dropped | CPU (cores) |")
    print("|---|---|---|---|---|---|")
    for lookahead in a.lookahead:
        out = os.path.join(a.work, "live.ts")
        sound = SoundInput.from_file(speech, a.speed)
        writer = StreamWriter(out, avatar.width, avatar.height, avatar.fps, avatar.colour)
        cpu, start = cpu_seconds(), time.monotonic()
        report = run_live(avatar, sound, writer, lookahead_s=lookahead, progress=Progress(quiet=True), outfile=out,
                          max_backlog=None if a.speed == 0 else MAX_BACKLOG)
        writer.close()
        wall, used = time.monotonic() - start, cpu_seconds() - cpu
        print(f"| {1000 * report.lookahead_s:.0f} ms | {report.frames / wall:.1f} | {1000 * report.latency(50):.0f} ms "
              f"| {1000 * report.latency(95):.0f} ms | {report.dropped} of {report.frames} | {used / wall:.2f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
