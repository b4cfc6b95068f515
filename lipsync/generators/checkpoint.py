"""Sync-model checkpoints: one .npz holding the hyperparameters, the weights of every
ensemble member and (for resuming training) the optimiser state.

Layout: `meta` is a JSON string with `format`, `dims` (a `ModelDimensions` as a dict),
`members` and free-form training information; `m{k}_w{i}` are member k's weights;
`opt{k}_*` the optimiser state. Nothing in it is executable (no pickle).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..backends import quiet_tensorflow
from ..errors import InputError, MissingBackendError
from ..io import jsondoc
from ..io.assets import asset_path
from ..io.files import atomic_output

FORMAT = "lipsync-sync-model/2"
DEFAULT_NAME = "sync_model.npz"


def default_checkpoint() -> str:
    """The shipped weights: lipsync/assets/sync_model.npz, package data (with MODEL_CARD.md)."""
    return asset_path(DEFAULT_NAME)


@dataclasses.dataclass
class Checkpoint:
    dims: dict
    members: List[Dict[str, np.ndarray]]
    optimiser: List[Dict[str, np.ndarray]]
    info: dict


def to_arrays(ckpt: Checkpoint) -> Dict[str, np.ndarray]:
    """The arrays of the .npz layout (see the module docstring)."""
    arrays = {"meta": np.array(json.dumps({"format": FORMAT, "dims": ckpt.dims, "members": len(ckpt.members),
                                           "info": ckpt.info}))}
    for k, weights in enumerate(ckpt.members):
        arrays.update({f"m{k}_{name}": value for name, value in weights.items()})
    for k, state in enumerate(ckpt.optimiser):
        arrays.update({f"opt{k}_{name}": value for name, value in state.items()})
    return arrays


def save(path: str, ckpt: Checkpoint) -> None:
    """Writes atomically (a stopped save leaves the previous file intact)."""
    arrays = to_arrays(ckpt)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load(path: str) -> Checkpoint:
    """Reads a checkpoint; a missing, foreign or other-version file raises a one-line error."""
    if not os.path.exists(path):
        raise MissingBackendError(f"{path}: sync model checkpoint not found (train one with `lipsync-train`, "
                                  "or use the warp model, which needs no weights)")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder, not a sync-model checkpoint")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # not an npz, truncated
        raise InputError(f"{path}: not a lipsync sync-model checkpoint ({type(exc).__name__})") from None
    return from_arrays(arrays, path)


def from_arrays(arrays: Dict[str, np.ndarray], path: str = "checkpoint") -> Checkpoint:
    """A checkpoint from the arrays of its .npz, every field checked (InputError naming the
    first wrong one: not a checkpoint, another version, a field missing or of the wrong type,
    no members, weights that are not finite numbers)."""
    arrays = dict(arrays)
    if "meta" not in arrays or arrays["meta"].dtype.kind not in "US" or arrays["meta"].ndim != 0:
        raise InputError(f"{path}: not a lipsync sync-model checkpoint (no metadata)")
    meta = jsondoc.parse(str(arrays.pop("meta")), path, "lipsync sync-model checkpoint")
    what = "checkpoint metadata"
    found = jsondoc.require(meta, "format", str, path, what, default=None)
    if found != FORMAT:
        raise InputError(f"{path}: checkpoint format {found!r} is not {FORMAT!r} "
                         "(made by a different version of lipsync; retrain with `lipsync-train`)")
    dims = jsondoc.require(meta, "dims", dict, path, what)
    for name in dims:
        if name == "dropout":
            jsondoc.require(dims, name, float, path, "model dimensions", check=lambda v: 0 <= v < 1,
                            expected="a number from 0 to 1")
        else:
            jsondoc.require(dims, name, object, path, "model dimensions", check=_dimension,
                            expected="a whole number or a list of them")
    n = jsondoc.require(meta, "members", int, path, what, check=lambda v: 1 <= v <= 64,
                        expected="a whole number of ensemble members from 1 to 64")
    info = jsondoc.require(meta, "info", dict, path, what, default={})
    members = [{k[len(f"m{i}_"):]: v for k, v in arrays.items() if k.startswith(f"m{i}_")} for i in range(n)]
    optimiser = [{k[len(f"opt{i}_"):]: v for k, v in arrays.items() if k.startswith(f"opt{i}_")} for i in range(n)]
    for k, weights in enumerate(members):
        for name, value in weights.items():
            if value.dtype.kind != "f" or not np.isfinite(value).all():
                raise InputError(f"{path}: member {k}'s weights {name} are not all finite numbers "
                                 "(a diverged or damaged training run); retrain with `lipsync-train`")
    return Checkpoint(dims, members, [o for o in optimiser if o], info)


def _dimension(value) -> bool:
    def whole(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    return whole(value) or isinstance(value, list) and bool(value) and all(whole(v) and v > 0 for v in value)


def build_models(ckpt: Checkpoint, path: str = "checkpoint") -> Tuple[object, list]:
    """(ModelDimensions, [SyncModel, ...]) rebuilt from a checkpoint; a mismatch is a clear error."""
    quiet_tensorflow()
    from .sync_model import ModelDimensions, SyncModel

    fields = {f.name for f in dataclasses.fields(ModelDimensions)}
    if set(ckpt.dims) != fields:
        raise InputError(f"{path}: model dimensions {sorted(ckpt.dims)} do not match this version's "
                         f"{sorted(fields)}; retrain with `lipsync-train`")
    dims = ModelDimensions(**{k: tuple(v) if isinstance(v, list) else v for k, v in ckpt.dims.items()})
    models = []
    for weights in ckpt.members:
        try:
            models.append(SyncModel(dims, weights))
        except (KeyError, ValueError) as exc:
            raise InputError(f"{path}: weights do not fit the model ({exc}); retrain with `lipsync-train`") from None
    return dims, models


def from_models(dims, models: list, info: Optional[dict] = None, optimiser: Optional[list] = None) -> Checkpoint:
    return Checkpoint(dataclasses.asdict(dims), [m.get_weights() for m in models], optimiser or [], info or {})
