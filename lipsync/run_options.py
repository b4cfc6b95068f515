"""The options of a run, apart from the generator's own (`lipsync.generators.options`): how
the input is read (frame rate of a photo, face detection, smoothing), how the sound is made from
text, how the output is written. Typed and checked once, when made (see `lipsync.options`); the
command line's flags and the web page's controls come from these fields.

A light module (no OpenCV, no TensorFlow), so that `--help` stays fast.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

from .errors import InputError
from .face.detect import DETECTORS, Box
from .io.media import DEFAULT_CRF
from .io.source import LOOP_MODES
from .options import Options, at_least, finite_range, one_of, option

MAX_FPS = 120.0
MAX_LOOKAHEAD = 1.0  # seconds


def box_from_flag(values: Optional[Sequence[int]]) -> Optional[Box]:
    """--box TOP BOTTOM LEFT RIGHT (Wav2Lip's order on the command line) -> (left, top, right, bottom)."""
    if not values:
        return None
    top, bottom, left, right = values
    return (left, top, right, bottom)


def _check_box(box: Optional[Box]) -> None:
    if box is not None and (len(box) != 4 or box[2] <= box[0] or box[3] <= box[1] or min(box) < 0):
        raise InputError(f"face box {tuple(box)}: must be (left, top, right, bottom) pixels with right > left "
                         "and bottom > top")


@dataclasses.dataclass(frozen=True)
class RunOptions(Options):
    """How one run reads its input and writes its output (the generator's own options apart:
    `lipsync.generators.options`). Checked once, when made."""

    fps: Optional[float] = option(25.0, "frame rate of the output when the input is a photo",
                                  check=finite_range("fps", 0.0, MAX_FPS, low_open=True))
    detector: str = option("hog", "face detector backend", choices=DETECTORS, check=one_of("face detector", DETECTORS))
    face_index: Optional[int] = option(None, "with several faces, sync the N-th from the left (0 = leftmost); "
                                             "default: the largest", check=at_least("face index", 0))
    box: Optional[Tuple[int, int, int, int]] = option(
        None, "use this fixed face box instead of detection", check=_check_box, from_flag=box_from_flag,
        metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"))
    nosmooth: bool = option(False, "do not smooth face landmarks over time")
    still: bool = option(False, "a photo keeps its head and eyes still (by default it blinks and moves slightly)")
    loop: str = option("pingpong", "how the video repeats when the sound is longer: back and forth, or from the start",
                       choices=LOOP_MODES, check=one_of("loop mode", LOOP_MODES))
    crf: int = option(DEFAULT_CRF, "x264 quality (lower is better; 18 is visually lossless)",
                      check=finite_range("crf", 0, 51))
    batch_size: int = option(16, "frames rendered per batch", check=at_least("batch size", 1))
    voice: Optional[str] = option(None, "with --text: eSpeak NG voice id, name or language code (by default the "
                                        "language of the text's script)")
    rate: Optional[int] = option(None, "with --text: speaking rate in words per minute")
    lookahead: Optional[float] = option(
        None, "plan the mouth as a stream does, hearing this many seconds of sound after each frame's middle (a "
              "model that can stream; with --live by default 0.2; without, the whole sound is heard unless given; "
              "about 0.26 is all the sync model reads)", check=finite_range("look-ahead", 0.0, MAX_LOOKAHEAD, " s"))
