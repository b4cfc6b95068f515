"""The generators, by name: each is one module with a `Generator` subclass (see `base`).

`--model` offers the names of this registry, first one the default. An entry is an import
path, so that a generator's heavy dependencies (TensorFlow, PyTorch) load only when it is
used: `--help` and the early checks stay fast. To add a generator, write its module and add
one line here (or call `register` from your own code); a generator with options of its own
names their class in OPTIONS (a `GeneratorOptions` subclass in a module that loads fast: the
command line and the web page offer every generator's options).
"""
from __future__ import annotations

import importlib
from typing import Dict, List, Optional, Type

from ..errors import InputError
from .options import GeneratorOptions

GENERATORS: Dict[str, str] = {
    "sync": "lipsync.generators.sync:SyncGenerator",  # the default
    "warp": "lipsync.generators.warp:WarpGenerator",
    "wav2lip": "lipsync.generators.wav2lip:Wav2LipGenerator",
}
OPTIONS: Dict[str, str] = {  # by default GeneratorOptions
    "sync": "lipsync.generators.options:SyncOptions",
    "wav2lip": "lipsync.generators.options:Wav2LipOptions",
}
DESCRIPTIONS: Dict[str, str] = {
    "sync": "this project's TensorFlow sound-to-mouth model",
    "warp": "training-free, the sound's loudness opens the mouth",
    "wav2lip": "the official Wav2Lip generator (bring its checkpoint; needs PyTorch)",
}


def names() -> List[str]:
    """The registered generator names, the default first."""
    return list(GENERATORS)


def register(name: str, target: str, description: str = "", options: Optional[str] = None) -> None:
    """Adds (or replaces) generator `name`: `target` is "package.module:ClassName", `options` the
    same for its options class (None: GeneratorOptions)."""
    GENERATORS[name] = target
    DESCRIPTIONS[name] = description
    if options:
        OPTIONS[name] = options
    else:
        OPTIONS.pop(name, None)


def require(name: str) -> None:
    """InputError unless a generator is registered as `name`."""
    if name not in GENERATORS:
        raise InputError(f"unknown model {name!r} (choose from {', '.join(GENERATORS)})")


def require_stream(name: str, what: str) -> None:
    """InputError unless generator `name` can plan a stream as the sound arrives (its `streams`);
    `what` names the option that asked for one."""
    require(name)
    if not get(name).streams:
        can = [n for n in GENERATORS if get(n).streams]
        raise InputError(f"{what}: model {name} cannot plan a stream (it needs the whole sound first); "
                         f"models that can: {', '.join(can) or 'none'}")


def get(name: str):
    """The Generator class registered as `name` (its module is imported now)."""
    require(name)
    return _load(GENERATORS[name])


def options_class(name: str) -> Type[GeneratorOptions]:
    """The options class of generator `name` (without importing the generator itself)."""
    require(name)
    return _load(OPTIONS[name]) if name in OPTIONS else GeneratorOptions


def _load(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
