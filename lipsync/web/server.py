"""Serving the page and the API: the command line of `python app.py` (`lipsync-ui`), the checks
of its address, an offline environment for Gradio, and the server's life."""
import argparse
import errno
import importlib.util
import logging
import os
import socket
import sys
import threading
import time
from typing import List, Optional

from ..errors import InputError, LipSyncError
from .page import build
from .sessions import Sessions

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_UPLOAD_MB = 500  # per file
KEEP_MINUTES = 60  # a session idle this long with no job queued or running is removed, like other files this old
log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    from ..cli import Parser

    p = Parser(prog="app.py", description="Serve the lip-sync web page and HTTP API on this computer (offline).")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}: this computer only; 0.0.0.0 opens the page "
                        "to your network)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--share", action="store_true", help="refused: a public link would send your media off this computer")
    p.add_argument("--max_upload_mb", type=int, default=MAX_UPLOAD_MB, help="largest file a page may upload, in MB")
    p.add_argument("--keep_minutes", type=float, default=KEEP_MINUTES,
                   help="a session's uploads and results are removed when its page closes, or after this long")
    p.add_argument("--quiet", action="store_true", help="print only the address and errors")
    return p


def check_args(args: argparse.Namespace) -> None:
    if args.share:
        raise InputError("--share is refused: a public link would send your media through a server off this "
                         "computer; use --host 0.0.0.0 to reach the page from your own network")
    if not 1 <= args.port <= 65535:
        raise InputError(f"port {args.port}: must be from 1 to 65535")
    if args.max_upload_mb < 1:
        raise InputError(f"upload limit {args.max_upload_mb} MB: must be 1 or more")
    if not args.keep_minutes > 0:
        raise InputError(f"keep {args.keep_minutes:g} minutes: must be more than 0")


def check_address(host: str, port: int) -> None:
    """InputError unless this computer can listen on host:port (before Gradio tries and says less)."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"--host {host}: not a known address ({getattr(exc, 'strerror', None) or exc})") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            why = {errno.EADDRINUSE: f"port {port} is taken (another app?); choose another with --port",
                   errno.EADDRNOTAVAIL: f"{host} is not an address of this computer",
                   errno.EACCES: f"port {port} needs more rights; use a port above 1023"}
            raise InputError(f"cannot listen on {host}:{port}: "
                             f"{why.get(exc.errno, exc.strerror or exc)}") from None


def offline_environment(upload_dir: str) -> None:
    """Before Gradio is imported: no analytics, no hub look-ups, uploads into `upload_dir`."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["GRADIO_TEMP_DIR"] = upload_dir
    os.environ["LIPSYNC_CACHE_DIR"] = os.path.join(upload_dir, "cache")  # face tracks of uploads go with them
    os.environ.setdefault("GRADIO_SSR_MODE", "False")


def serve(args: argparse.Namespace) -> int:
    from ..io.files import temp_dir

    check_args(args)
    check_address(args.host, args.port)
    with temp_dir("ui") as root:
        offline_environment(root)
        if importlib.util.find_spec("gradio") is None:
            raise LipSyncError("the web page needs Gradio: pip install -r requirements-ui.txt "
                               "(or bash run.sh ui)")
        sessions = Sessions(root, args.keep_minutes * 60)
        demo = build(sessions)
        stop = threading.Event()

        def expire():
            while not stop.wait(min(60.0, sessions.keep_s / 4)):
                sessions.expire()

        threading.Thread(target=expire, daemon=True).start()
        try:
            demo.launch(server_name=args.host, server_port=args.port, share=False, prevent_thread_lock=True,
                        max_file_size=f"{args.max_upload_mb}mb", show_error=True, quiet=True,
                        enable_monitoring=False, ssr_mode=False, mcp_server=False, pwa=False)
        except OSError as exc:  # taken between the check and now
            raise LipSyncError(f"cannot listen on {args.host}:{args.port}: {str(exc).splitlines()[0]}") from None
        print(f"lipsync web page: http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{args.port} "
              "(Ctrl-C stops it)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: the way to stop a server
            if not args.quiet:
                print("stopped; its temporary files are removed", flush=True)
        finally:
            stop.set()
            sessions.stop_all()  # running jobs end (their outputs removed) before the folder goes
            demo.close()
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    from ..cli import _run

    return _run(serve, parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
