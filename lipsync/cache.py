"""The on-disk cache (face tracks, personal models): one folder, one key rule, one file format.

Entries are .npz files (no pickle) under $LIPSYNC_CACHE_DIR, else ~/.cache/lipsync, named
by the SHA-1 of what they depend on (input content, settings, versions). A cache is an
optimisation: an entry that cannot be read is ignored and rebuilt, and one that cannot be
written is a warning, never an error.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
from typing import Dict, Optional

import numpy as np

log = logging.getLogger(__name__)


def root() -> str:
    """The cache folder: $LIPSYNC_CACHE_DIR, else $XDG_CACHE_HOME/lipsync (~/.cache/lipsync)."""
    return os.environ.get("LIPSYNC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lipsync")


def entry_path(kind: str, *key: object) -> str:
    """Path of the entry of `kind` (a subfolder, e.g. "tracks") for the key parts `key`
    (bytes are hashed as they are, anything else as its str())."""
    h = hashlib.sha1()
    for part in key:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return os.path.join(root(), kind, h.hexdigest() + ".npz")


def file_stamp(path: str) -> Optional[tuple]:
    """(absolute path, size, mtime) of a file, or None when it cannot be seen. A function
    memoised on (path, stamp) reads each file once per process while the file is unchanged."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return os.path.abspath(path), st.st_size, st.st_mtime_ns


def file_digest(path: str) -> str:
    """SHA-1 of a file's content (read once per process while the file is unchanged)."""
    return _digest(file_stamp(path) or (os.path.abspath(path), None, None))


@functools.lru_cache(maxsize=64)
def _digest(stamp: tuple, chunk: int = 1 << 20) -> str:
    path = stamp[0]
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def load(path: str) -> Optional[Dict[str, np.ndarray]]:
    """The arrays of a cache entry, or None when it is missing or unreadable (then it is
    discarded with a warning, so that it gets rebuilt)."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except OSError as exc:  # unreadable now (permissions, a network glitch): not proof of damage, keep it
        log.warning("cannot read the cache entry %s (%s)", path, exc)
        return None
    except Exception as exc:  # truncated, not a zip, foreign content: rebuild it
        log.warning("ignoring damaged cache entry %s (%s)", path, type(exc).__name__)
        try:
            os.remove(path)
        except OSError:
            pass
        return None


def save(path: str, arrays: Dict[str, np.ndarray], compress: bool = True) -> None:
    """Writes an entry atomically (a stopped write leaves no entry); failure is only a warning."""
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        (np.savez_compressed if compress else np.savez)(tmp, **arrays)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not write the cache entry %s: %s", path, exc)
        try:
            os.remove(tmp)
        except OSError:
            pass
