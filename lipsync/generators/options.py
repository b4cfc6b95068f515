"""Each generator's options, typed and checked once (see `lipsync.options`). They live in this
light module, apart from the generators (which load OpenCV, TensorFlow or PyTorch), so that the
command line and the web page can offer every generator's options without loading any.

`GeneratorOptions` holds what every generator reads; a generator with options of its own
subclasses it and names the class in the registry's OPTIONS (`lipsync.generators`).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from ..errors import InputError
from ..options import Options, one_of, option, positive

PERSONALIZE_MODES = ("auto", "on", "off")
DEVICES = ("auto", "cpu", "cuda")


def _four(value) -> None:
    if len(value) != 4:
        raise InputError(f"pads {tuple(value)}: give four numbers (top, bottom, left, right)")


@dataclasses.dataclass(frozen=True)
class GeneratorOptions(Options):
    """What every generator may read."""

    pads: Tuple[int, int, int, int] = option((0, 0, 0, 0), "extra pixels around the region that may change",
                                             check=_four, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"))
    use_cache: bool = option(True, "track the face again instead of using the cached track", flag="--no_cache",
                             negate=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pads", tuple(self.pads))
        super().__post_init__()


@dataclasses.dataclass(frozen=True)
class SyncOptions(GeneratorOptions):
    """The sync model's: its weights and the personal style fitted on the input's own speech."""

    personalize: str = option("auto", "sync model: fit the mouth's style and range to the input's own speech (auto: "
                                      "when it has some), cached per input", choices=PERSONALIZE_MODES,
                              check=one_of("personalize mode", PERSONALIZE_MODES))
    personalize_seconds: float = option(120.0, "personalization reads at most this many seconds of the input's own "
                                               "speech",
                                        check=positive("personalization length", " s"))
    checkpoint_path: Optional[str] = option(None, "sync model: weights (by default those shipped inside lipsync)")


@dataclasses.dataclass(frozen=True)
class Wav2LipOptions(GeneratorOptions):
    """The Wav2Lip path's: the official checkpoint the user brings, and where PyTorch runs."""

    checkpoint_path: Optional[str] = option(None, "--model wav2lip: the official checkpoint (by default "
                                                  "checkpoints/wav2lip_gan.pth)")
    device: str = option("auto", "--model wav2lip: where PyTorch runs (auto: a CUDA GPU when present)",
                         choices=DEVICES, check=one_of("device", DEVICES))
