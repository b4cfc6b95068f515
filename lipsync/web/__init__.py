"""The web page and HTTP API: `python app.py` (or `lipsync-ui`) serves both on
http://127.0.0.1:7860, offline.

The page takes a video or photo (uploaded or recorded) and a sound (uploaded, recorded, or
text spoken by `tts`), shows one lip-synced frame before the long run, runs the pipeline with
a progress bar per stage, plays the result and measures it with `evaluate`. The API is one
queued endpoint, `/lip_sync(video, audio, text, model, personalize)`, whose first output is
the result video; `gradio_client` and plain HTTP both call it (see the README).

Nothing leaves the machine: the server listens on 127.0.0.1 unless told otherwise, Gradio's
analytics and share links are off, and the page loads only what the server serves. Uploads
and results live in one temporary folder per app (a sub-folder per browser session), removed
when the session ends, after `keep_minutes`, and when the app stops. One job runs at a time;
the others wait in the queue, which tells each page its place.

The rooms: `sessions` (the app's temporary files), `service` (what the page and the API do,
without Gradio), `page` (the file tab, the Live tab and the API, built with Gradio) and
`server` (the command line and the server's life).

Gradio is an optional extra (`pip install -r requirements-ui.txt`); it is imported only inside
`page.build` and `server.serve`.
"""
from .page import build, control
from .server import check_address, check_args, main, parser, serve
from .service import App, face_crops, figures_table, one_line, stage_reporter, to_16k_mono
from .sessions import Sessions

__all__ = ["App", "Sessions", "build", "check_address", "check_args", "control", "face_crops", "figures_table",
           "main", "one_line", "parser", "serve", "stage_reporter", "to_16k_mono"]
