"""Serves the lip-sync web page and HTTP API on http://127.0.0.1:7860 (see lipsync/app.py)."""
import sys

from lipsync.app import main

if __name__ == "__main__":
    sys.exit(main())
