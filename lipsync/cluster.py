"""`--batch CSV --engine ray`: a batch's jobs on a Ray cluster, or on a local Ray runtime.

The same CSV, outputs and rules as the local batch (`lipsync.batch`): finished outputs are
skipped, a failing job is reported with its CSV line and the rest go on, outputs are written
atomically. Inputs, outputs and the CSV live on a folder every node reads (a shared mount).

Work is placed where it is cheap:
- each distinct video is tracked once, by one task; its track goes to the jobs that use it
  through Ray's object store, handed to `lip_sync(track=...)`;
- a job is a task on one CPU. Ray reuses worker processes, and a worker keeps the models it
  loaded, so the weights load once per worker, not once per job;
- the output is written on the worker, under a temporary name renamed when complete.

Faults: the toolkit's own errors (bad input) are results, reported and never retried. A task
whose worker dies (killed, out of memory, a lost node) is run again elsewhere, at most
`RETRIES` times; the dead worker's partial file never becomes an output and the next job
writing to that folder removes it.

Nothing is sent anywhere: usage statistics are off and no dashboard starts.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable, Dict, List, Optional

from .batch import Job, Outcome, job_tag, to_run
from .errors import Interrupted, LipSyncError, MissingBackendError, stop_on_signals

RETRIES = 3  # a task whose worker died runs again at most this many times
ENGINES = ("local", "ray")


def _ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before Ray is imported: no usage statistics
    try:
        import ray
    except ImportError:
        raise MissingBackendError("--engine ray needs Ray: pip install -r requirements-ray.txt "
                                  "(or pip install \"lipsync[ray]\")") from None
    return ray


def connect(address: Optional[str] = None, num_cpus: Optional[int] = None):
    """Joins the Ray cluster at `address` ("auto": the one this machine belongs to; "ray://host:10001":
    a remote one), or starts a local runtime with `num_cpus` workers (default: every core).
    Workers import this package from where the driver does."""
    ray = _ray()
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    runtime_env = {"env_vars": {"PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0"}}
    if address and address != "auto":
        _check_reachable(address)
    quiet = dict(runtime_env=runtime_env, log_to_driver=False, logging_level=logging.ERROR)
    try:
        if address:
            ray.init(address=address, **quiet)
        else:  # its nodes address each other on the loopback address
            ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1", **quiet)
    except Exception as exc:  # noqa: BLE001: refused, unauthenticated (no token), no cluster at "auto"...
        where = f"join the Ray cluster at {address}" if address else "start Ray on this machine"
        raise LipSyncError(f"cannot {where}: {str(exc).strip().splitlines()[0]}") from None
    if threading.current_thread() is threading.main_thread():
        stop_on_signals()  # ray.init made SIGTERM a bare exit: a stop must cancel the jobs and say what is kept
    if ray.cluster_resources().get("CPU", 0) < 1:
        ray.shutdown()
        raise LipSyncError(f"the Ray cluster at {address} has no CPU for jobs (start its nodes with --num-cpus 1 "
                           "or more)")
    return ray


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """LipSyncError unless something answers at `address` ([ray://]HOST:PORT): Ray itself would
    wait for a cluster that is not there for many minutes."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise LipSyncError(f"--ray_address {address}: give HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise LipSyncError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} "
                           "(is `ray start --head` running there?)") from None


def _track(job: Job, options: dict) -> Optional[dict]:
    """Runs on a worker: the face track of the job's video, as arrays (None for a photo, or when
    the input is bad: the job itself then reports it)."""
    from .face.track import track_media
    from .pipeline import checked_media, media_tracking
    from .progress import Progress

    run = options["options"]
    try:
        info, box = checked_media(job.video, run.box)
        if info.is_image:
            return None
        fps, settings = media_tracking(info, run.fps or 25.0, run.detector, run.face_index, box)
        track = track_media(info, fps, settings, use_cache=options["model_options"].use_cache,
                            progress=Progress(True))
        return track.to_arrays()
    except Exception:  # noqa: BLE001: each job then tracks the video itself, and reports what is wrong
        return None


def _dub(job: Job, options: dict, track: Optional[dict]) -> Outcome:
    """Runs on a worker: one job, handed the face track of its video when one was made."""
    from .face.track import FaceTrack
    from .pipeline import lip_sync

    start = time.time()
    try:
        given = None if track is None else FaceTrack.from_arrays(track)
        result = lip_sync(video_path=job.video, audio_path=job.audio, outfile=job.outfile, track=given, **options)
    except LipSyncError as exc:
        return Outcome(job, "failed", str(exc), time.time() - start)
    return Outcome(job, "done", result.summary(), time.time() - start)


def run_batch_ray(jobs: List[Job], options: dict, *, address: Optional[str] = None,
                  num_cpus: Optional[int] = None, overwrite: bool = False, quiet: bool = False,
                  report: Optional[Callable[[str], None]] = None,
                  report_error: Optional[Callable[[str], None]] = None) -> List[Outcome]:
    """The batch on Ray: the outcomes, as `batch.run_batch` gives them. `options` are
    `lip_sync`'s keyword arguments for every job (model, options, model_options, or option
    keywords). The face track of each distinct video is made once and handed to its jobs."""
    from tqdm import tqdm

    from .pipeline import run_options

    model = options.get("model", "sync")
    keywords = {k: v for k, v in options.items() if k not in ("model", "options", "model_options", "quiet")}
    run, mine = run_options(model, options.get("options"), options.get("model_options"), keywords)
    options = dict(model=model, options=run, model_options=mine, quiet=True)
    todo, outcomes = to_run(jobs, overwrite, report)
    if not todo:
        return outcomes
    ray = connect(address, num_cpus)
    track_task = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)(_track)
    dub_task = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)(_dub)
    tracks: Dict[str, object] = {}
    pending = {}
    start = time.time()
    try:
        for k, job in todo:
            if job.video not in tracks:
                tracks[job.video] = track_task.remote(job, options)  # once per distinct video
            pending[dub_task.remote(job, options, tracks.get(job.video))] = (k, job)
        counts = {"done": 0, "failed": 0}
        with tqdm(total=len(pending), desc="batch (ray)", unit="job", disable=quiet) as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                k, job = pending.pop(ready[0])
                try:
                    outcome = ray.get(ready[0])
                except ray.exceptions.RayError as exc:  # a worker died more than RETRIES times, or a bug
                    outcome = Outcome(job, "failed", f"the job's worker failed: {str(exc).strip().splitlines()[-1]}")
                outcomes.append(outcome)
                counts[outcome.status] += 1
                tag = job_tag(k, jobs)
                if outcome.status == "failed" and report_error:
                    bar.clear()
                    report_error(f"{tag}: failed (line {job.line}): {outcome.message}")
                elif outcome.status == "done" and report:
                    bar.clear()
                    report(f"{tag}: wrote {job.outfile} in {outcome.seconds:.1f} s")
                bar.update(1)
                minutes = (time.time() - start) / 60
                bar.set_postfix(done=counts["done"], failed=counts["failed"], left=len(pending),
                                per_min=f"{counts['done'] / minutes:.1f}" if minutes else "-")
    except KeyboardInterrupt as exc:
        for ref in pending:
            ray.cancel(ref, force=True)
        done = sum(o.status == "done" for o in outcomes)
        raise Interrupted(getattr(exc, "signum", 2),
                          f"{done} finished job{'s' if done != 1 else ''} kept, the jobs in progress were stopped (the "
                          "next run writing to their folders on the same machine removes their partial files); "
                          "run the batch again to go on") from None
    finally:
        ray.shutdown()
    order = {job.line: i for i, job in enumerate(jobs)}
    return sorted(outcomes, key=lambda o: order[o.job.line])
