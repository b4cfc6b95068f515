#!/usr/bin/env python3
"""Lip-sync a frame folder with the official Wav2Lip generator: see --help."""
import sys

from lipsync.cli import wav2lip_main

if __name__ == "__main__":
    sys.exit(wav2lip_main())
