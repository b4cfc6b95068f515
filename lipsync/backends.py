"""Loading the heavy backends the way the toolkit runs them.

TensorFlow reads two settings from the environment when it is first imported: its log level
(its start-up chatter goes to the terminal otherwise) and oneDNN's kernels (they print a notice,
gain nothing for networks this small, and round differently). `quiet_tensorflow` sets both,
unless the user set them, before anything of the toolkit imports TensorFlow; the model modules
themselves only import it (no import-time side effects there).
"""
from __future__ import annotations

import os


def quiet_tensorflow():
    """TensorFlow, imported now (or already) with the toolkit's settings; returns the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the terminal
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # no retracing notices: every ensemble member has its own graph
    return tf
