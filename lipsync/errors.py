"""The one exception family of the toolkit.

Every failure caused by the user's input or environment is a :class:`LipSyncError`.
The scripts print ``error: <message>`` on one line and exit with status 2; anything
else escaping is a bug in the toolkit.
"""
from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, then the signals that ask a program to end


class LipSyncError(Exception):
    """Base class: a problem with the input, the output or the environment."""

    exit_code = 2


class InputError(LipSyncError):
    """An input file is missing, unreadable or of the wrong kind."""


class NoFaceError(LipSyncError):
    """No face could be found where one is needed."""


class OutputError(LipSyncError):
    """The output cannot be written where it was asked for."""


class MissingBackendError(LipSyncError):
    """An optional backend (package or weights file) is not installed."""


class Cancelled(LipSyncError):
    """The caller cancelled the run (a cancel callback returned True); nothing was written."""

    exit_code = 130


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, or a stop signal (SIGTERM from kill, timeout, docker stop or systemd; SIGHUP from
    a closed terminal): the run stops at once and removes what it was writing. `kept` says
    what stays (a batch keeps its finished jobs)."""

    def __init__(self, signum: int = signal.SIGINT, kept: str = "no output written"):
        self.name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        super().__init__(self.name)
        self.signum, self.kept = int(signum), kept
        self.exit_code = 128 + self.signum  # what a shell reports for a process ended by the signal


def stop_on_signals() -> None:
    """From now on SIGTERM and SIGHUP stop this process the way Ctrl-C does (raising Interrupted
    in the main thread), so that every cleanup runs; a signal the parent ignores (nohup) stays
    ignored. For the scripts' main thread only."""

    def stop(signum, frame):
        raise Interrupted(signum)

    for sig in STOP_SIGNALS[1:]:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, stop)
