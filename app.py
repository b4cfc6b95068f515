"""Serves the lip-sync web page and HTTP API on http://127.0.0.1:7860 (see lipsync/web/)."""
import sys

from lipsync.web import main

if __name__ == "__main__":
    sys.exit(main())
