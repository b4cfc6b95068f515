"""The built-in example: the astronaut photo that scikit-image ships speaks a sentence.

    python -m lipsync.demo [--quiet]

Writes video/astronaut.png, audio/demo.wav and output/astronaut_demo.mp4.
"""
from __future__ import annotations

import argparse
import os
import sys

SENTENCE = ("Hello! I am speaking to you from a single photograph. "
            "Every word you hear was made offline, and my lips follow it.")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    args = p.parse_args(argv)
    import cv2
    import skimage.data

    from .cli import lip_sync_main, tts_main

    os.makedirs("video", exist_ok=True)
    photo = os.path.join("video", "astronaut.png")
    cv2.imwrite(photo, skimage.data.astronaut()[:, :, ::-1])
    speech = os.path.join("audio", "demo.wav")
    quiet = ["--quiet"] if args.quiet else []
    code = tts_main(["--text", SENTENCE, "--output", speech] + quiet)
    if code:
        return code
    return lip_sync_main(["--video_path", photo, "--audio_path", speech,
                          "--outfile", os.path.join("output", "astronaut_demo.mp4")] + quiet)


if __name__ == "__main__":
    sys.exit(main())
