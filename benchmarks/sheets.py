#!/usr/bin/env python3
"""Contact sheets of the lower face: look at a result frame by frame beside other videos.

Every --every-th frame of each video is cropped to the same lower-face box (found by the
face tracker on the first video: from the nose to below the chin, cheek to cheek), scaled
--scale times, and the videos are set side by side in each cell (first video left), the cells
tiled --columns across. Use it on a result, the result of the previous version and the real
footage of the same frames (e.g. the second half of a dub-test clip):

    python benchmarks/sheets.py after.mp4 before.mp4 real.mp4 --out sheet.png
    python benchmarks/sheets.py out.mp4 --start 50 --frames 24 --out sheet.png

Keep the sheets out of git, like every picture made from the clips in ../shared/data.
"""
from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lipsync.face.track import TrackSettings, track_frames  # noqa: E402
from lipsync.io.media import VideoReader, probe  # noqa: E402


def lower_face_box(frames: list, fps: float) -> tuple:
    """(x0, y0, x1, y1): the box around the lower face of the tracked frames (median landmarks)."""
    track = track_frames(frames, TrackSettings(), fps)
    if not track.valid.any():
        raise SystemExit("no face found in the first video")
    points = np.nanmedian(track.landmarks[track.valid], axis=0)
    lo = np.array([points[2:15, 0].min(), points[30, 1]])
    hi = np.array([points[2:15, 0].max(), points[8, 1]])
    pad = 0.12 * (hi - lo)
    (x0, y0), (x1, y1) = np.floor(lo - pad).astype(int), np.ceil(hi + pad).astype(int)
    h, w = frames[0].shape[:2]
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def read(path: str, start: int, count: int) -> tuple:
    info = probe(path)
    frames = []
    for i, frame in enumerate(VideoReader(info, info.fps)):
        if i >= start + count:
            break
        if i >= start:
            frames.append(np.asarray(frame))
    return frames, info.fps


def sheet(paths: list, *, every: int = 3, scale: float = 2.0, start: int = 0, frames: int = 24,
          columns: int = 0) -> np.ndarray:
    """The sheet (uint8 BGR) of `frames` cells, each frame `start + k * every` of every video."""
    videos = [read(p, start, frames * every)[0] for p in paths]
    box = lower_face_box(videos[0], 25.0)
    x0, y0, x1, y1 = box
    cells = []
    for k in range(0, min(len(v) for v in videos), every):
        crops = [cv2.resize(v[k][y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
                 for v in videos]
        cell = np.concatenate([np.pad(c, ((0, 0), (0, 4), (0, 0))) for c in crops], axis=1)
        cv2.putText(cell, str(start + k), (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2)
        cells.append(np.pad(cell, ((0, 6), (0, 6), (0, 0)), constant_values=255))
    if not cells:
        raise SystemExit("no frames in that range")
    columns = columns or max(1, int(round(np.sqrt(len(cells) * cells[0].shape[0] / cells[0].shape[1]))))
    cells += [np.full_like(cells[0], 255)] * (-len(cells) % columns)
    rows = [np.concatenate(cells[r:r + columns], axis=1) for r in range(0, len(cells), columns)]
    return np.concatenate(rows, axis=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+", help="videos of the same framing; the face is found in the first")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--every", type=int, default=3, help="take every N-th frame")
    p.add_argument("--scale", type=float, default=2.0, help="scale of the crops")
    p.add_argument("--start", type=int, default=0, help="first frame")
    p.add_argument("--frames", type=int, default=24, help="cells on the sheet")
    p.add_argument("--columns", type=int, default=0, help="cells across (0: about square)")
    a = p.parse_args()
    image = sheet(a.videos, every=a.every, scale=a.scale, start=a.start, frames=a.frames, columns=a.columns)
    if not cv2.imwrite(a.out, image):
        raise SystemExit(f"{a.out}: could not write the sheet")
    print(f"{a.out}: {image.shape[1]}x{image.shape[0]}")


if __name__ == "__main__":
    main()
