"""The web app's temporary files: uploads, the face-track cache and each browser session's
results, all in one folder, removed when a session ends or has been idle too long."""
import contextlib
import itertools
import os
import shutil
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence

class Sessions:
    """The app's temporary files, all under `root`: Gradio's uploads (a folder per upload), the
    face-track cache, and a folder of results per browser session (`root`/sessions/<id>).

    A session's results, and the uploads it used that no other session has used or uploaded
    again since, are removed when the session ends (`end`: its page closed). `expire` ends the
    sessions idle for `keep_s` with no job queued or running (API callers have no page to close)
    and removes the other files older than that.
    """

    def __init__(self, root: str, keep_s: float):
        self.root, self.keep_s = root, keep_s
        self.sessions = os.path.join(root, "sessions")
        self._lock = threading.Lock()
        self._stop: Dict[str, threading.Event] = {}  # session -> its jobs' stop flag
        self._uploads: Dict[str, Dict[str, int]] = {}  # upload path -> {session: its mtime when used}
        self._seen: Dict[str, float] = {}  # session -> time of its last activity
        self._jobs: Dict[str, int] = {}  # session -> jobs queued or running
        self._names = itertools.count(1)
        self.on_end: List[Callable[[str], None]] = []  # told of each session that ends (closed or expired)

    def folder(self, session: str) -> str:
        path = os.path.join(self.sessions, _safe(session))
        os.makedirs(path, exist_ok=True)
        return path

    def result_name(self, session: str, stem: str, suffix: str = ".mp4") -> str:
        """A new file name in the session's folder: <stem>_lipsync_<time>_<n><suffix>."""
        return os.path.join(self.folder(session), f"{stem}_lipsync_{time.strftime('%H%M%S')}_{next(self._names)}"
                                                  f"{suffix}")

    def use(self, session: str, paths: Sequence[Optional[str]]) -> None:
        """Records that `session` uses these uploads (as they are now: an upload of the same
        bytes by another page replaces the file, and `end` then leaves it to that page)."""
        with self._lock:
            self._seen[session] = time.time()
            for path in paths:
                if path and _inside(path, self.root):
                    with contextlib.suppress(OSError):
                        self._uploads.setdefault(os.path.abspath(path), {})[session] = os.stat(path).st_mtime_ns

    def hold(self, session: str) -> None:
        """A job of `session` is queued: its files stay until the job has run (`job(held=True)`)."""
        with self._lock:
            self._jobs[session] = self._jobs.get(session, 0) + 1
            self._seen[session] = time.time()

    @contextlib.contextmanager
    def job(self, session: str, held: bool = False) -> Iterator[threading.Event]:
        """While a job of `session` runs: yields its stop flag (cleared: a Stop pressed before
        it started stopped the page's queued jobs, not this one); the session does not expire."""
        if not held:
            self.hold(session)
        with self._lock:
            stop = self._stop.setdefault(session, threading.Event())
            stop.clear()
        try:
            yield stop
        finally:
            with self._lock:
                self._jobs[session] = max(0, self._jobs.get(session, 0) - 1)
                self._seen[session] = time.time()

    def stop(self, session: str) -> None:
        """Stops the job of `session` that is running, if any."""
        with self._lock:
            stop = self._stop.get(session)
        if stop is not None:
            stop.set()

    def stop_all(self) -> None:
        with self._lock:
            flags = list(self._stop.values())
        for flag in flags:
            flag.set()

    def end(self, session: str) -> None:
        """The page was closed: stop its job and remove its results, and the uploads it used
        that no other page has used or uploaded again since."""
        self.stop(session)
        for hook in self.on_end:
            hook(session)
        with self._lock:
            self._stop.pop(session, None)
            self._seen.pop(session, None)
            self._jobs.pop(session, None)
            mine = []
            for path, users in list(self._uploads.items()):
                if session not in users:
                    continue
                seen = users.pop(session)
                if not users:
                    del self._uploads[path]
                    with contextlib.suppress(OSError):
                        if os.stat(path).st_mtime_ns == seen:
                            mine.append(path)
        shutil.rmtree(os.path.join(self.sessions, _safe(session)), ignore_errors=True)
        for path in mine:  # Gradio keeps each upload in a folder of its own
            folder = os.path.dirname(path)
            shutil.rmtree(folder, ignore_errors=True) if folder != self.root else _remove(path)

    def expire(self, now: Optional[float] = None) -> List[str]:
        """Ends the sessions idle for keep_s with no job, then removes the files older than
        keep_s that no live session uses; returns what it removed."""
        now = time.time() if now is None else now
        with self._lock:
            idle = [s for s, seen in self._seen.items() if now - seen > self.keep_s and not self._jobs.get(s)]
        removed = []
        for session in idle:
            self.end(session)
            removed.append(os.path.join(self.sessions, _safe(session)))
        with self._lock:
            live = {_safe(s) for s in self._seen}
            used = list(self._uploads)
        for parent in (self.sessions, self.root):
            for name in _listdir(parent):
                path = os.path.join(parent, name)
                if path == self.sessions or (parent == self.sessions and name in live) \
                        or any(_inside(u, path) for u in used):
                    continue
                if now - _newest(path) > self.keep_s:
                    shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else _remove(path)
                    removed.append(path)
        return removed


def _inside(path: str, folder: str) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(folder) + os.sep)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def _safe(session: str) -> str:
    """A session id as a folder name (Gradio's ids are short alphanumerics; anything else is kept out)."""
    name = "".join(c for c in (session or "anonymous") if c.isalnum() or c in "-_")[:64]
    return name or "anonymous"


def _listdir(path: str) -> List[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _newest(path: str) -> float:
    newest = os.path.getmtime(path) if os.path.exists(path) else 0.0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                newest = max(newest, os.path.getmtime(os.path.join(folder, name)))
    return newest
