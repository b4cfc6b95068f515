#!/usr/bin/env python3
"""Write a video's frames as numbered images (for lip_sync_wav2lip.py): see --help."""
import sys

from lipsync.cli import extract_frames_main

if __name__ == "__main__":
    sys.exit(extract_frames_main())
