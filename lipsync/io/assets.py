"""The files shipped inside the package, in `lipsync/assets` (package data: the weights, their
model cards and licences), found through `importlib.resources` wherever lipsync is installed."""
from __future__ import annotations

import importlib.resources
import pathlib
from typing import ContextManager

ASSETS = "assets"  # the folder inside the package


def asset_file(name: str) -> ContextManager[pathlib.Path]:
    """A context manager giving a file-system path of the shipped file `name` (a temporary copy
    while the block runs, should the package live in a zip)."""
    return importlib.resources.as_file(importlib.resources.files("lipsync") / ASSETS / name)


def asset_path(name: str) -> str:
    """The path of the shipped file `name` in an installed (unzipped) package, as a string: for
    defaults that users see and may replace, such as `--checkpoint_path`."""
    return str(importlib.resources.files("lipsync").joinpath(ASSETS, name))
