"""Files the toolkit writes: checked before the work, written whole or not at all, and never
left behind.

Every output goes through `check_output` (before any long work) and `atomic_output` (a
hidden temporary name beside it, renamed on success). Temporary names carry a tag with this
machine and process (`lipsync-<host>-<pid>-`), so that the leftovers of a run that was
killed outright (`kill -9`, a power cut) are recognised and removed by the next run, while
those of a live run, here or on another machine sharing the folder, are left alone.
A full disk is one line naming the folder (`disk_errors`), never a traceback.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from typing import Dict, Iterator, List, Optional, Sequence

from ..errors import OutputError

NAME_MAX = 255  # bytes in a file name, where the file system does not say
def _host() -> str:
    """This machine and process-id namespace (containers sharing a host name have their own pids)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return hashlib.sha1(f"{socket.gethostname()}/{namespace}".encode()).hexdigest()[:6]


HOST = _host()
_TAG = re.compile(r"lipsync-([0-9a-f]{6})-(\d+)-")
_WRITERS: Dict[str, subprocess.Popen] = {}  # temporary output path -> the process still writing it


def temp_tag() -> str:
    """The start of this process's temporary names: lipsync-<host>-<pid>-."""
    return f"lipsync-{HOST}-{os.getpid()}-"


def _owner_gone(name: str) -> bool:
    """Was `name` made by a process of this machine that no longer runs?"""
    tags = _TAG.findall(name)  # the last one: a user's own name may hold something like a tag
    if not tags or tags[-1][0] != HOST:
        return False  # not ours, or another machine's: its owner cannot be checked from here
    try:
        os.kill(int(tags[-1][1]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def sweep(folder: str, pattern: str) -> List[str]:
    """Removes the files and folders matching `pattern` in `folder` left by dead runs of this
    machine (see the module docstring). Returns what it removed; errors are ignored."""
    removed = []
    for path in glob.glob(os.path.join(glob.escape(folder), pattern)):
        if _owner_gone(os.path.basename(path)):
            with contextlib.suppress(OSError):
                shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
                removed.append(path)
    return removed


def temp_dir(kind: str) -> tempfile.TemporaryDirectory:
    """A temporary folder under $TMPDIR (removed when closed), after the stale ones of dead runs."""
    sweep(tempfile.gettempdir(), f"lipsync-{HOST}-*")
    return tempfile.TemporaryDirectory(prefix=f"{temp_tag()}{kind}-")


def name_max(folder: str) -> int:
    """The longest file name (bytes) the file system of `folder` takes."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def cut(text: str, limit: int) -> str:
    """`text` cut at a character boundary to at most `limit` bytes (UTF-8)."""
    return text.encode()[:max(0, limit)].decode("utf-8", "ignore")


def shorten(name: str, limit: int, keep: Optional[str] = None) -> str:
    """`name` in at most `limit` bytes: its stem cut, its extension kept (or, given `keep`, all
    of `name` is the stem and `keep` is appended)."""
    stem, tail = (name, keep) if keep is not None else os.path.splitext(name)
    return cut(stem, limit - len(tail.encode())) + tail


def _missing(folder: str) -> List[str]:
    """`folder` and those of its parents that do not exist, deepest first."""
    missing, parent = [], os.path.abspath(folder)
    while not os.path.exists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    return missing


def _existing(folder: str) -> str:
    """`folder`, or its nearest parent that exists."""
    missing = _missing(folder)
    return os.path.dirname(missing[-1]) if missing else os.path.abspath(folder)


def check_output(path: str, what: str = "output", *, extensions: Optional[Sequence[str]] = None,
                 inputs: Sequence[Optional[str]] = ()) -> bool:
    """Raises OutputError, naming `path`, unless it can be written: not one of `inputs`, not a
    folder, under a writable folder, a name the file system takes, one of `extensions` (the
    formats the writer can make). Returns whether a file is there already (it will be replaced)."""
    for source in inputs:
        if source and (os.path.abspath(source) == os.path.abspath(path) or _same_file(source, path)):
            raise OutputError(f"{path}: the {what} file is also an input; choose another {what} file")
    if os.path.isdir(path):
        raise OutputError(f"{path}: the {what} path is a folder; give a file name such as "
                          f"{os.path.join(path, 'out' + (extensions[0] if extensions else ''))}")
    ext = os.path.splitext(path)[1].lower()
    if extensions and ext not in extensions:
        raise OutputError(f"{path}: the {what} " + (f"cannot be a {ext} file" if ext else "needs an extension")
                          + f"; name it with one of {', '.join(extensions)}")
    folder = _existing(os.path.dirname(os.path.abspath(path)))
    if not os.path.isdir(folder):
        raise OutputError(f"{folder}: is a file, not a folder: cannot write {path}")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{folder}: output folder is not writable")
    limit = name_max(folder)
    for part in os.path.relpath(os.path.abspath(path), folder).split(os.sep):
        if len(part.encode()) > limit:
            raise OutputError(f"{path}: the name {part[:24]}... is {len(part.encode())} bytes long; "
                              f"this file system takes at most {limit}")
    return os.path.isfile(path)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def register_writer(path: str, proc: subprocess.Popen) -> None:
    """`proc` writes the temporary file `path`: stopped before the file is removed on failure."""
    _WRITERS[path] = proc


def unregister_writer(path: str) -> None:
    _WRITERS.pop(path, None)


def stop_process(proc: subprocess.Popen) -> None:
    """Kills `proc` (a writer, say) and waits for it; one that has ended already is fine."""
    with contextlib.suppress(Exception):
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """Yields a temporary path beside `path`; renames it to `path` only on success.

    On any exception (Ctrl-C, SIGTERM included) the temporary file is removed, and so are the
    folders made for it; nothing is left. Stale temporary files of dead runs are removed first.
    """
    if os.path.isdir(path):
        raise OutputError(f"{path}: the output path is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    made = make_folder(folder)  # removed again if the run fails
    sweep(folder, f".*.lipsync-{HOST}-*.partial*")
    stem, ext = os.path.splitext(os.path.basename(path))
    tag = f"{temp_tag()}{uuid.uuid4().hex[:8]}"
    prefix = os.path.join(folder, "." + cut(stem, 40) + "." + tag)
    tmp = prefix + shorten(".partial" + ext, 40)
    try:
        with disk_errors(folder, "the output"):
            open(tmp, "xb").close()
        with disk_errors(folder, "the output", FULL):
            yield tmp
        umask = os.umask(0)
        os.umask(umask)
        with disk_errors(path, "the output"):
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
    except BaseException:
        for tmp_path in [p for p in _WRITERS if p.startswith(prefix)]:  # a writer could still write it
            stop_process(_WRITERS.pop(tmp_path))
        # by prefix, so that a stop landing just after the file was made leaves nothing either
        for leftover in glob.glob(glob.escape(prefix) + "*"):
            with contextlib.suppress(OSError):
                os.remove(leftover)
        remove_made(made)
        raise


def make_folder(folder: str) -> List[str]:
    """Makes `folder` and its missing parents; returns those it made, deepest first (see remove_made)."""
    made = _missing(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{exc.filename or folder}: cannot create the output folder ({exc.strerror})") from None
    return made


def remove_made(made: List[str]) -> None:
    """Removes the folders make_folder made, where they are still empty (a failed run leaves none)."""
    for empty in made:
        with contextlib.suppress(OSError):
            os.rmdir(empty)


def write_file(path: str, data) -> None:
    """Writes `data` (str as UTF-8, or bytes) to `path` atomically (see atomic_output)."""
    with atomic_output(path) as tmp:
        with disk_errors(path, "the output"), open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)


FULL = (errno.ENOSPC, errno.EDQUOT)  # a full disk, or quota
UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG)


@contextlib.contextmanager
def disk_errors(where: str, what: str, errnos: Sequence[int] = FULL + UNWRITABLE) -> Iterator[None]:
    """Turns an OSError with one of `errnos` while writing `what` under `where` into one
    OutputError line: a full disk (or quota), by default also a read-only or vanished folder."""
    try:
        yield
    except OSError as exc:
        if exc.errno in FULL and exc.errno in errnos:
            raise OutputError(f"{where}: no space left on the disk for {what} ({exc.strerror})") from None
        if exc.errno in errnos:
            raise OutputError(f"{where}: cannot write {what} ({exc.strerror})") from None
        raise


def free_bytes(folder: str) -> Optional[int]:
    """Bytes free for this user under `folder`, or None when the system does not say."""
    try:
        return shutil.disk_usage(_existing(folder)).free
    except OSError:
        return None


def check_space(folder: str, need: int, what: str, hint: str = "") -> None:
    """OutputError unless `folder` has `need` bytes free for `what`."""
    free = free_bytes(folder)
    if free is not None and free < need:
        raise OutputError(f"{folder}: {what} needs about {need / 1e9:.1f} GB, only {free / 1e9:.1f} GB free{hint}")
