#!/usr/bin/env python3
"""Size and cost of the frame spool (what lip_sync.py keeps when the sound outlasts the video).

For each clip: decodes every frame without a spool, then with every frame kept, then reads
them all back in reverse; prints the spool's size against the raw 3 bytes per pixel and the
milliseconds per frame of each pass.

    python benchmarks/spool.py ../shared/data/video/lp_s18.mp4 ../shared/data/train/*M003*.mp4
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lipsync.io.media import probe  # noqa: E402
from lipsync.io.source import FrameSource  # noqa: E402


def measure(path: str) -> str:
    info = probe(path)
    n = int(info.duration * info.fps)
    start = time.time()
    with FrameSource(info, info.fps) as frame:
        for i in range(n):
            if frame(i) is None:
                n = i
                break
    plain = time.time() - start
    start = time.time()
    with FrameSource(info, info.fps, keep=range(n)) as frame:
        for i in range(n):
            frame(i)
        kept = time.time() - start
        start = time.time()
        for i in range(n - 1, -1, -1):
            frame(i)
        back = time.time() - start
        size = frame.__self__.spool.size
    raw = n * info.width * info.height * 3
    return (f"{os.path.basename(path)} {info.width}x{info.height}, {n} frames: spool {size / raw:.3f} of raw "
            f"({size / n / 1e6:.2f} MB a frame); ms a frame: decode {plain / n * 1e3:.1f}, decode and keep "
            f"{kept / n * 1e3:.1f}, read back {back / n * 1e3:.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("clips", nargs="+")
    for clip in p.parse_args().clips:
        print(measure(clip))


if __name__ == "__main__":
    main()
