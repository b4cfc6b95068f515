"""lipsync: offline, CPU-first lip-sync toolkit.

    import lipsync
    result = lipsync.lip_sync(video_path="me.mp4", audio_path="line.wav")   # -> output/me_line.mp4
    print(result.summary())

`lip_sync` and `lip_sync_frames` (the Wav2Lip path over a frame folder) are imported on
first use: importing the package itself loads neither OpenCV nor TensorFlow.
"""
from .errors import Cancelled, InputError, LipSyncError, MissingBackendError, NoFaceError, OutputError

__all__ = ["Cancelled", "InputError", "LipSyncError", "MissingBackendError", "NoFaceError", "OutputError",
           "Result", "lip_sync", "lip_sync_frames"]

__version__ = "0.2.0"

_LAZY = {"lip_sync": "pipeline", "lip_sync_frames": "pipeline", "Result": "pipeline"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
