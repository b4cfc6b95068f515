#!/usr/bin/env python3
"""The same batch with `--engine local` and `--engine ray` on a two-node Ray cluster started
on this machine (`ray start` twice: a head and a worker, one CPU each), and where one job's
time goes.

Makes its own media in a temporary folder: 3 videos of the astronaut's face (the photo that
scikit-image ships, drifting as a head would; `--seconds` long) and 4 spoken sentences (eSpeak),
12 jobs in all. Prints wall times, throughput and the stages of one job.

    python benchmarks/cluster.py [--model sync] [--seconds 3]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Please bring me my big blue map.",
             "We will meet at noon by the old mill.", "Every morning she buys fresh bread."]


def make_media(folder: str, seconds: float) -> str:
    """3 face videos and 4 sentences; returns the CSV of their 12 pairs."""
    import cv2
    import numpy as np
    import skimage.data

    from lipsync.io.media import ffmpeg_command
    from lipsync.io.tts import synthesize

    face = cv2.resize(skimage.data.astronaut()[0:300, 80:380, ::-1], (256, 256), interpolation=cv2.INTER_AREA)
    videos = []
    for v in range(3):
        frames = []
        for i in range(int(seconds * 25)):
            m = np.float32([[1, 0, 3 * np.sin(i / (7 + v))], [0, 1, 2 * np.cos(i / 9)]])
            frames.append(cv2.warpAffine(face, m, (256, 256), borderMode=cv2.BORDER_REFLECT))
        path = os.path.join(folder, f"face{v}.mp4")
        subprocess.run(ffmpeg_command("-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", "256x256", "-r", "25", "-i",
                                      "-", "-c:v", "libx264", "-crf", "16", "-pix_fmt", "yuv420p", path),
                       input=b"".join(f.tobytes() for f in frames), check=True)
        videos.append(os.path.basename(path))
    sounds = []
    for k, text in enumerate(SENTENCES):
        path = os.path.join(folder, f"line{k}.wav")
        synthesize(text, path)
        sounds.append(os.path.basename(path))
    csv = os.path.join(folder, "jobs.csv")
    with open(csv, "w") as f:
        f.write("video,audio\n" + "".join(f"{v},{s}\n" for v in videos for s in sounds))
    return csv


def timed(cmd, env=None) -> float:
    start = time.time()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.time() - start


def stages(csv: str, model: str) -> dict:
    """Seconds of each stage of one job (cold cache, models loaded first)."""
    from lipsync import lip_sync
    from lipsync.pipeline import make_generator

    folder = os.path.dirname(csv)
    start = time.time()
    make_generator(model)
    out = {"model load": time.time() - start}
    marks = []
    result = lip_sync(video_path=os.path.join(folder, "face0.mp4"), audio_path=os.path.join(folder, "line0.wav"),
                      outfile=os.path.join(folder, "stages.mp4"), model=model, quiet=True,
                      progress=lambda stage, done, total: marks.append((time.time(), stage)))
    first = {}
    for t, stage in marks:
        first.setdefault(stage, t)
    names = list(first)
    ends = [first[n] for n in names[1:]] + [marks[-1][0]]
    out.update({n: e - first[n] for n, e in zip(names, ends)})
    out["job in all"] = result.seconds
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="sync")
    p.add_argument("--seconds", type=float, default=3.0, help="length of each video")
    args = p.parse_args()
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    with tempfile.TemporaryDirectory() as folder:
        csv = make_media(folder, args.seconds)
        env = dict(os.environ, LIPSYNC_CACHE_DIR=os.path.join(folder, "cache-local"), RAY_USAGE_STATS_ENABLED="0",
                   RAY_AUTH_MODE="token")  # the nodes and the driver share ~/.ray/auth_token
        batch = [sys.executable, os.path.join(ROOT, "lip_sync.py"), "--batch", csv, "--model", args.model, "--quiet",
                 "--overwrite"]
        local = timed(batch + ["--engine", "local"], env)
        env["LIPSYNC_CACHE_DIR"] = os.path.join(folder, "cache-ray")
        node = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
        subprocess.run([ray, "start", "--head", "--port", "6390", "--include-dashboard", "false", *node],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        try:
            subprocess.run([ray, "start", "--address", "127.0.0.1:6390", *node], check=True, env=env,
                           stdout=subprocess.DEVNULL)
            on_ray = timed(batch + ["--engine", "ray", "--ray_address", "127.0.0.1:6390"], env)
        finally:
            subprocess.run([ray, "stop", "--force"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        n = 12
        print(f"| engine | wall | jobs a minute |\n|---|---|---|\n| local (one process) | {local:.1f} s | "
              f"{60 * n / local:.1f} |\n| ray (2 nodes x 1 CPU, one machine) | {on_ray:.1f} s | {60 * n / on_ray:.1f} |")
        os.environ["LIPSYNC_CACHE_DIR"] = os.path.join(folder, "cache-stages")
        print("\n| stage of one job | seconds |\n|---|---|")
        for name, seconds in stages(csv, args.model).items():
            print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
