"""The on-disk cache (face tracks, personal models): one folder, one key rule, one file format.

Entries are .npz files (no pickle) under $LIPSYNC_CACHE_DIR, else ~/.cache/lipsync, named
by the SHA-1 of what they depend on (input content, settings, versions). A cache is an
optimisation: an entry that cannot be read is ignored and rebuilt, and one that cannot be
written is a warning, never an error.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import uuid
from typing import Callable, Dict, Optional, TypeVar

import numpy as np

from .io.files import HOST, sweep, temp_tag

log = logging.getLogger(__name__)
T = TypeVar("T")


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


def load(path: str, parse: Optional[Callable[[Dict[str, np.ndarray]], T]] = None) -> Optional[T]:
    """The arrays of a cache entry, or `parse(arrays)`; None when the entry is missing or
    unusable. A damaged entry (truncated, foreign, or one `parse` refuses with KeyError,
    ValueError, IndexError or TypeError) is discarded with a warning, so that it is rebuilt."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        return parse(arrays) if parse else arrays
    except OSError as exc:  # unreadable now (permissions, a network glitch): not proof of damage, keep it
        _warn_once(f"cannot read the cache entry {path} ({exc}); going on without it")
        return None
    except Exception as exc:  # truncated, not a zip, foreign or inconsistent content: rebuild it
        discard(path, f"{type(exc).__name__}: {exc}")
        return None


def discard(path: str, why: str) -> None:
    """Removes a damaged or stale entry, with a warning."""
    log.warning("discarding the cache entry %s (%s); it will be rebuilt", path, why)
    with contextlib.suppress(OSError):
        os.remove(path)


def save(path: str, arrays: Dict[str, np.ndarray], compress: bool = True) -> None:
    """Writes an entry atomically (a stopped write leaves no entry; the temporary files of runs
    killed outright are removed by the next save). Failure (a read-only or full disk, a cache
    path that is a file) is a warning, given once per process: the run goes on without caching."""
    folder = os.path.dirname(path)
    tmp = f"{path[:-len('.npz')]}.{temp_tag()}{uuid.uuid4().hex[:8]}.tmp.npz"
    try:
        os.makedirs(folder, exist_ok=True)
        sweep(folder, f"*.lipsync-{HOST}-*.tmp.npz")
        (np.savez_compressed if compress else np.savez)(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException as exc:  # a failed write, or Ctrl-C in the middle of one: no temporary file stays
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if not isinstance(exc, OSError):
            raise
        _warn_once(f"cannot write to the cache {root()} ({exc.strerror or exc}); going on without caching "
                   "(set LIPSYNC_CACHE_DIR to a writable folder, or pass --no_cache)", key=root())


_warned: set = set()


def _warn_once(message: str, key: Optional[str] = None) -> None:
    key = key or message
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)
