"""Batch mode: many (video, audio) jobs from a CSV file in one process.

The CSV has a header with the columns `video` and `audio`, and optionally `outfile`;
relative paths are taken from the CSV file's folder (paths may lead anywhere the user can
read: the CSV is the user's own list), and outputs without an `outfile` go to `output/`
beside the CSV, wherever the batch is started from. Models are loaded once and face
tracks come from the per-input cache, so the second job on the same video skips
detection. A job whose output already exists is skipped (unless `overwrite`), so a stopped
batch resumes where it left off. A failing job is reported and the others still run.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import signal
import time
from typing import Callable, List, Optional, Tuple

from .errors import InputError, Interrupted, LipSyncError
from .pipeline import default_outfile

COLUMNS = ("video", "audio", "outfile")


@dataclasses.dataclass(frozen=True)
class Job:
    line: int  # line of the CSV file, for messages
    video: str
    audio: str
    outfile: str


@dataclasses.dataclass
class Outcome:
    job: Job
    status: str  # "done", "skipped" or "failed"
    message: str = ""
    seconds: float = 0.0


def read_jobs(csv_path: str, output_dir: str = "output") -> List[Job]:
    """The jobs of a batch file (outputs by default in `output_dir` beside it). Raises
    InputError for an unusable file, naming the line."""
    if not os.path.isfile(csv_path):
        raise InputError(f"{csv_path}: batch file not found")
    base = os.path.dirname(os.path.abspath(csv_path))
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{csv_path}: not a readable CSV file ({exc})") from None
    rows = [(n, r) for n, r in enumerate(rows, 1) if any(cell.strip() for cell in r)]
    if not rows:
        raise InputError(f"{csv_path}: the batch file is empty (expected a header: video,audio[,outfile])")
    header = [c.strip().lower() for c in rows[0][1]]
    if "video" not in header or "audio" not in header:
        raise InputError(f"{csv_path}: line {rows[0][0]}: the header must name the columns video and audio "
                         f"(and optionally outfile), found {','.join(header)}")
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise InputError(f"{csv_path}: line {rows[0][0]}: unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})")
    def here(p: str) -> str:
        return os.path.normpath(os.path.join(base, os.path.expanduser(p)))

    jobs, seen = [], {}
    for line, row in rows[1:]:
        cells = dict(zip(header, (c.strip() for c in row)))
        if not cells.get("video") or not cells.get("audio"):
            raise InputError(f"{csv_path}: line {line}: needs both a video and an audio path")
        video, audio = here(cells["video"]), here(cells["audio"])
        stem = os.path.splitext(os.path.basename(audio))[0]
        outfile = here(cells["outfile"] if cells.get("outfile") else default_outfile(video, stem, output_dir))
        key = os.path.abspath(outfile)
        if key in (os.path.abspath(video), os.path.abspath(audio)):
            raise InputError(f"{csv_path}: line {line}: the output {outfile} is also the job's input")
        if key in seen:
            raise InputError(f"{csv_path}: lines {seen[key]} and {line} would both write {outfile}")
        seen[key] = line
        jobs.append(Job(line, video, audio, outfile))
    if not jobs:
        raise InputError(f"{csv_path}: no jobs after the header")
    return jobs


def job_tag(k: int, jobs: List[Job]) -> str:
    """How the reports name job number `k` (from 1) of `jobs`."""
    job = jobs[k - 1]
    return f"[{k}/{len(jobs)}] {os.path.basename(job.video)} + {os.path.basename(job.audio)}"


def to_run(jobs: List[Job], overwrite: bool, report: Optional[Callable[[str], None]] = None
           ) -> Tuple[List[Tuple[int, Job]], List[Outcome]]:
    """(the jobs to run, numbered from 1; the outcomes of those skipped because their output
    exists, unless `overwrite`), reporting each skipped one."""
    todo, skipped = [], []
    for k, job in enumerate(jobs, 1):
        if os.path.exists(job.outfile) and not overwrite:
            skipped.append(Outcome(job, "skipped", "output exists"))
            if report:
                report(f"{job_tag(k, jobs)}: skipped, {job.outfile} exists")
        else:
            todo.append((k, job))
    return todo, skipped


def run_batch(jobs: List[Job], run_one: Callable[[Job], None], *, report: Optional[Callable[[str], None]] = None,
              report_error: Optional[Callable[[str], None]] = None, overwrite: bool = False) -> List[Outcome]:
    """Runs `run_one(job)` for each job whose output does not exist yet (every job: `overwrite`).

    LipSyncError from a job marks it failed and the batch goes on; Ctrl-C (or SIGTERM) stops
    the batch with Interrupted saying what is kept: the job in progress leaves no output,
    finished ones stay and are skipped next time.
    """
    todo, outcomes = to_run(jobs, overwrite, report)
    try:
        for k, job in todo:
            tag = job_tag(k, jobs)
            start = time.time()
            try:
                run_one(job)
            except LipSyncError as exc:
                outcomes.append(Outcome(job, "failed", str(exc), time.time() - start))
                if report_error:
                    report_error(f"{tag}: failed (line {job.line}): {exc}")
                continue
            outcomes.append(Outcome(job, "done", job.outfile, time.time() - start))
            if report:
                report(f"{tag}: wrote {job.outfile} in {time.time() - start:.1f} s")
    except KeyboardInterrupt as exc:
        done = sum(o.status == "done" for o in outcomes)
        raise Interrupted(getattr(exc, "signum", signal.SIGINT),
                          f"{done} finished job{'s' if done != 1 else ''} kept, the job in progress left nothing; "
                          "run the batch again to go on") from None
    order = {id(job): i for i, job in enumerate(jobs)}
    return sorted(outcomes, key=lambda o: order[id(o.job)])


def summary(outcomes: List[Outcome]) -> str:
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    return (f"batch: {counts['done']} done, {counts['skipped']} skipped (output existed), "
            f"{counts['failed']} failed, {sum(o.seconds for o in outcomes):.1f} s")
