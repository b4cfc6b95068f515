#!/usr/bin/env python3
"""Measure a lip-sync result (and run panels and benchmarks): see --help."""
import sys

from lipsync.cli import evaluate_main

if __name__ == "__main__":
    sys.exit(evaluate_main())
