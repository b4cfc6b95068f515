#!/usr/bin/env python3
"""Lip-sync a video or photo to a sound track (or to text): see --help."""
import sys

from lipsync.cli import lip_sync_main

if __name__ == "__main__":
    sys.exit(lip_sync_main())
