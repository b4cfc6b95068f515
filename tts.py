#!/usr/bin/env python3
"""Text to speech, offline: see --help."""
import sys

from lipsync.cli import tts_main

if __name__ == "__main__":
    sys.exit(tts_main())
