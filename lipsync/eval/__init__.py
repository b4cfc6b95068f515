"""Measuring results: metrics, `evaluate.py`, blind rating panels, the dub test over a folder."""
