"""lipsync: offline, CPU-first lip-sync toolkit."""
from .errors import InputError, LipSyncError, MissingBackendError, NoFaceError, OutputError

__all__ = ["InputError", "LipSyncError", "MissingBackendError", "NoFaceError", "OutputError", "lip_sync"]

__version__ = "0.1.0"


def lip_sync(**kwargs):
    """See `lipsync.pipeline.lip_sync` (imported lazily: it pulls in OpenCV and dlib)."""
    from .pipeline import lip_sync as run

    return run(**kwargs)
