"""The one exception family of the toolkit.

Every failure caused by the user's input or environment is a :class:`LipSyncError`.
The scripts print ``error: <message>`` on one line and exit with status 2; anything
else escaping is a bug in the toolkit.
"""
from __future__ import annotations


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
