"""Command-line front ends. Each `*_main` parses arguments and forwards them to a
keyword-only library function; bad input ends in one line on stderr and exit status 2."""
from __future__ import annotations

import argparse
import contextlib
import logging
import re
import sys
import threading
import time
from typing import Callable, List, Optional

from .errors import Interrupted, LipSyncError, stop_on_signals

class FORMATTER(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default only where there is one worth showing (not None, not a switch's
    False) and the help text does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse with the toolkit's formatter, and a hint for a value that starts with '-'
    (argparse takes it for an option)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=FORMATTER, **kwargs)

    def error(self, message: str):
        m = re.match(r"argument (--\w+)(?:/\S+)?: expected (one|\d+) argument", message)
        if m:
            message += f" (a value that starts with '-' goes after '=': {m.group(1)}=-name.mp4)"
        super().error(message)


def _run(main: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser,
         argv: Optional[List[str]]) -> int:
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    logging.getLogger("lipsync").setLevel(logging.DEBUG if verbose else
                                          logging.ERROR if getattr(args, "quiet", False) else logging.WARNING)
    if threading.current_thread() is threading.main_thread():
        stop_on_signals()
    try:
        return main(args)
    except LipSyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        stop = exc if isinstance(exc, Interrupted) else Interrupted()
        with contextlib.suppress(OSError):  # after a hang-up the terminal may be gone
            print(f"interrupted ({stop.name}): {stop.kept}", file=sys.stderr)
        return stop.exit_code


CHECKPOINT_HELP = ("model weights (by default the sync model's weights shipped inside lipsync; for --model wav2lip "
                   "checkpoints/wav2lip_gan.pth)")


def lip_sync_parser() -> argparse.ArgumentParser:
    from . import generators
    from .options import add_flags
    from .run_options import RunOptions

    models = generators.names()
    model_help = "; ".join(f"{name}: {generators.DESCRIPTIONS.get(name, '')}" for name in models)

    p = Parser(prog="lip_sync.py",
               description="Make the face in a video or photo speak a new sound track.")
    p.add_argument("--video_path", help="video (mp4, mov, mkv, webm, avi, mpg) or photo (png, jpg, webp)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--audio_path", help="sound to sync to: any audio file, or a video whose sound is used")
    src.add_argument("--text", help="speak this text offline (eSpeak NG) and sync to it")
    p.add_argument("--outfile", help="output video (by default output/<video stem>_<audio stem>.mp4)")
    p.add_argument("--batch", metavar="CSV",
                   help="run many jobs: a CSV with columns video,audio[,outfile] (paths relative to the CSV); "
                        "outputs go to output/ beside the CSV unless named; jobs whose output exists are skipped "
                        "(so a stopped batch resumes), a failing job does not stop the others")
    p.add_argument("--overwrite", action="store_true",
                   help="with --batch: redo the jobs whose output exists (a single run always replaces its output, "
                        "and says so)")
    p.add_argument("--model", default=models[0], choices=models, help=model_help)
    # every generator's options, each flag once (lipsync.generators.options), then the run's (lipsync.run_options)
    add_flags(p, [generators.options_class(name) for name in models] + [RunOptions],
              helps={"checkpoint_path": CHECKPOINT_HELP})
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="with --batch: run the jobs in this process (local) or on a Ray cluster (ray; "
                        "pip install -r requirements-ray.txt)")
    p.add_argument("--ray_address", default=None,
                   help="with --engine ray: the cluster to join (auto: the one this machine is in; ray://HOST:10001); "
                        "default: a Ray runtime on this machine alone")
    p.add_argument("--ray_cpus", type=int, default=None,
                   help="with --engine ray and no --ray_address: jobs at once on this machine (default: every core)")
    p.add_argument("--live", action="store_true",
                   help="stream in real time: the sound comes from --audio_path - (raw 16 kHz mono s16le on standard "
                        "input) or a file played at real-time speed; --outfile - writes MPEG-TS to standard output "
                        "(by default output/<video stem>_live.ts); reports go to stderr")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.add_argument("--verbose", action="store_true", help="also print what each stage decided (debug details)")
    return p


def _typed(args: argparse.Namespace):
    """The run's options and the chosen model's, from the parsed flags: made and checked once
    (and a look-ahead only for a model that can stream)."""
    from . import generators
    from .options import from_args
    from .run_options import RunOptions

    run, mine = from_args(RunOptions, args), from_args(generators.options_class(args.model), args)
    if run.lookahead is not None and not args.live:
        generators.require_stream(args.model, "look-ahead")
    return run, mine


def _lip_sync_live(args: argparse.Namespace) -> int:
    from .live import LIVE_LOOKAHEAD, live

    unsupported = [flag for flag, used in (("--batch", args.batch), ("--engine", args.engine != "local"),
                                          ("--loop", args.loop != "pingpong"), ("--nosmooth", args.nosmooth)) if used]
    if unsupported:
        raise LipSyncError(f"--live does not take {', '.join(unsupported)}: it streams one avatar, the video "
                           "playing back and forth")
    if not args.video_path:
        raise LipSyncError("missing --video_path: the video or photo of the avatar")
    run, mine = _typed(args)
    report = live(video_path=args.video_path, audio_path=args.audio_path, text=args.text, outfile=args.outfile,
                  lookahead_s=LIVE_LOOKAHEAD if run.lookahead is None else run.lookahead, model=args.model,
                  options=run.replace(lookahead=None), model_options=mine, quiet=args.quiet)
    if not args.quiet:
        print(report.summary(), file=sys.stderr)
    return 0


def _lip_sync(args: argparse.Namespace) -> int:
    from .pipeline import lip_sync

    if args.live:
        return _lip_sync_live(args)
    if args.batch:
        given = [f for f, v in (("--video_path", args.video_path), ("--audio_path", args.audio_path),
                                ("--text", args.text), ("--outfile", args.outfile)) if v]
        if given:
            raise LipSyncError(f"--batch takes the videos and sounds from {args.batch}: drop {' and '.join(given)}")
    elif args.engine != "local" or args.ray_address or args.ray_cpus:
        raise LipSyncError("--engine, --ray_address and --ray_cpus run the jobs of a --batch CSV: add --batch")
    elif not args.video_path:
        raise LipSyncError("missing --video_path: the video or photo to lip-sync (or --batch CSV for many jobs)")
    else:
        from .io.tts import require_sound

        require_sound(args.audio_path, args.text, "pass --audio_path FILE or --text \"...\"")

    run, mine = _typed(args)
    options = dict(model=args.model, options=run, model_options=mine, quiet=args.quiet)  # lip_sync's, for every job
    if args.batch:
        if args.ray_cpus is not None and args.ray_cpus < 1:
            raise LipSyncError(f"--ray_cpus {args.ray_cpus}: must be 1 or more")
        if args.ray_cpus is not None and args.ray_address:
            raise LipSyncError("--ray_cpus sizes the Ray runtime started on this machine; a cluster's nodes set "
                               "theirs with ray start --num-cpus: drop --ray_cpus or --ray_address")
        return _lip_sync_batch(args.batch, options, args.quiet, args.overwrite, args.engine, args.ray_address,
                               args.ray_cpus)
    result = lip_sync(video_path=args.video_path, audio_path=args.audio_path, text=args.text, outfile=args.outfile,
                      **options)
    if not args.quiet:
        print(result.summary())
    return 0


def _lip_sync_batch(csv_path: str, options: dict, quiet: bool, overwrite: bool, engine: str = "local",
                    ray_address: Optional[str] = None, ray_cpus: Optional[int] = None) -> int:
    from .batch import read_jobs, run_batch, summary
    from .pipeline import lip_sync, make_generator

    jobs = read_jobs(csv_path)
    make_generator(options["model"], options["model_options"])  # fails before any job
    report = None if quiet else print
    report_error = lambda line: print(f"error: {line}", file=sys.stderr)  # noqa: E731
    if engine == "ray":
        from .cluster import run_batch_ray

        start = time.time()
        outcomes = run_batch_ray(jobs, options, address=ray_address, num_cpus=ray_cpus, overwrite=overwrite,
                                 quiet=quiet, report=report, report_error=report_error)
        if not quiet:  # the jobs ran side by side: the wall time, then the jobs' own time
            print(f"{summary(outcomes)} of job time, {time.time() - start:.1f} s in all")
        return 1 if any(o.status == "failed" for o in outcomes) else 0
    else:
        outcomes = run_batch(jobs, lambda job: lip_sync(video_path=job.video, audio_path=job.audio,
                                                        outfile=job.outfile, **options),
                             report=report, report_error=report_error, overwrite=overwrite)
    if not quiet:
        print(summary(outcomes))
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def lip_sync_main(argv: Optional[List[str]] = None) -> int:
    return _run(_lip_sync, lip_sync_parser(), argv)


def extract_frames_parser() -> argparse.ArgumentParser:
    from .io.frames import FORMATS

    p = Parser(prog="extract_frames.py",
               description="Write every frame of a video as numbered images, with frames.json and "
                           "the sound track (audio.wav), for lip_sync_wav2lip.py.")
    p.add_argument("--video_path", required=True, help="the video")
    p.add_argument("--output_dir", required=True, help="folder for 000000.png, 000001.png, ..., frames.json")
    p.add_argument("--format", default="png", choices=FORMATS, help="png is lossless; jpg is smaller")
    p.add_argument("--quality", type=int, default=None,
                   help="jpg: quality 1-100 (default 95); png: compression level 0-9 (default 1, fastest)")
    p.add_argument("--overwrite", action="store_true", help="replace frames already in --output_dir")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return p


def _extract_frames(args: argparse.Namespace) -> int:
    from .io.frames import extract_frames

    info = extract_frames(video_path=args.video_path, output_dir=args.output_dir, fmt=args.format,
                          quality=args.quality, overwrite=args.overwrite, quiet=args.quiet)
    if not args.quiet:
        sound = f", sound in {info.audio}" if info.audio else ", no sound track"
        print(f"wrote {info.frame_count} frames ({info.width}x{info.height}, {info.fps:g} fps) "
              f"to {args.output_dir}{sound}")
    return 0


def extract_frames_main(argv: Optional[List[str]] = None) -> int:
    return _run(_extract_frames, extract_frames_parser(), argv)


def wav2lip_parser() -> argparse.ArgumentParser:
    from .generators.wav2lip import OFFICIAL_NAMES
    from .io.media import DEFAULT_CRF
    from .io.source import LOOP_MODES
    from .render.paste import DEFAULT_PADS

    p = Parser(prog="lip_sync_wav2lip.py",
               description="Lip-sync a frame folder (from extract_frames.py) with the official "
                           f"Wav2Lip generator. Bring {' or '.join(OFFICIAL_NAMES)} in checkpoints/.")
    p.add_argument("--audio_path", required=True, help="sound to sync to: any audio file, or a video's sound")
    p.add_argument("--frames_dir", required=True, help="folder written by extract_frames.py (or numbered images)")
    p.add_argument("--checkpoint_path", default=None, help="Wav2Lip weights (by default checkpoints/wav2lip_gan.pth)")
    p.add_argument("--outfile", help="output video (by default output/<folder name>_<audio stem>.mp4)")
    p.add_argument("--fps", type=float, default=None, help="frame rate (by default from frames.json)")
    p.add_argument("--batch_size", type=int, default=16, help="faces per generator batch")
    p.add_argument("--pads", type=int, nargs=4, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                   default=list(DEFAULT_PADS), help="pixels added around the face box")
    p.add_argument("--resize_factor", type=int, default=1, help="shrink frames by this factor first (faster)")
    p.add_argument("--nosmooth", action="store_true", help="do not smooth face positions over time")
    p.add_argument("--box", type=int, nargs=4, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"), default=None,
                   help="use this fixed face box instead of detection")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where PyTorch runs (auto: a CUDA GPU when present)")
    p.add_argument("--loop", default="pingpong", choices=LOOP_MODES, help="how frames repeat for longer sound")
    p.add_argument("--crf", type=int, default=DEFAULT_CRF, help="x264 quality (lower is better)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.add_argument("--verbose", action="store_true", help="also print debug details")
    return p


def _wav2lip(args: argparse.Namespace) -> int:
    from .pipeline import lip_sync_frames
    from .run_options import box_from_flag

    result = lip_sync_frames(frames_dir=args.frames_dir, audio_path=args.audio_path, outfile=args.outfile,
                             checkpoint_path=args.checkpoint_path, fps=args.fps, batch_size=args.batch_size,
                             pads=tuple(args.pads), resize_factor=args.resize_factor, nosmooth=args.nosmooth,
                             box=box_from_flag(args.box), device=args.device, loop=args.loop,
                             crf=args.crf, quiet=args.quiet)
    if not args.quiet:
        print(result.summary())
    return 0


def wav2lip_main(argv: Optional[List[str]] = None) -> int:
    return _run(_wav2lip, wav2lip_parser(), argv)


def tts_parser() -> argparse.ArgumentParser:
    p = Parser(prog="tts.py",
               description="Turn text into speech offline (eSpeak NG), as input for lip_sync.py.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="the words to speak (UTF-8, any language eSpeak NG knows)")
    src.add_argument("--text_file", help="a UTF-8 text file to speak")
    src.add_argument("--list_voices", action="store_true", help="list the voices and exit")
    p.add_argument("--output", default="audio/speech.wav", help="WAV file to write")
    p.add_argument("--voice", default=None, help="voice id, name or language code (e.g. en, fr, de, ja); by default "
                                                 "the language of the text's script (Arabic, Hebrew, Cyrillic, CJK...), "
                                                 "English for Latin script")
    p.add_argument("--rate", type=int, default=None, help="speaking rate in words per minute")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    return p


def _tts(args: argparse.Namespace) -> int:
    from .io import tts
    from .io.media import check_readable

    if args.list_voices:
        for v in tts.list_voices():
            print(f"{v.id:24} {','.join(v.languages):16} {v.name}")
        return 0
    text = args.text
    if args.text_file:
        check_readable(args.text_file, "text")
        try:
            with open(args.text_file, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError:
            raise LipSyncError(f"{args.text_file}: not UTF-8 text") from None
    if not text.strip():
        raise LipSyncError(f"{args.text_file or '--text'}: the text to speak is empty")
    tts.synthesize(text, args.output, voice=args.voice, rate=args.rate, inputs=[args.text_file])
    if not args.quiet:
        print(f"wrote {args.output}")
    return 0


def tts_main(argv: Optional[List[str]] = None) -> int:
    return _run(_tts, tts_parser(), argv)


def evaluate_parser() -> argparse.ArgumentParser:
    p = Parser(prog="evaluate.py",
               description="Measure a lip-sync result. Subcommands: 'panel' (a blind listening/viewing "
                           "test page), 'tally' (its scores), 'benchmark' (the dub test over a folder); "
                           "see 'evaluate.py panel --help' etc.")
    p.add_argument("--video", required=True, help="the result to measure")
    p.add_argument("--reference", help="the real video the result should reproduce (same frame rate)")
    p.add_argument("--audio", help="the sound that drove the result: checks the result's sound track against it")
    p.add_argument("--source", help="the video that was dubbed (the input of lip_sync.py): measures how much of its "
                                    "own mouth movement shows through in the result (leakage)")
    p.add_argument("--annotations", help="CSV of frame,label rows (open/closed or viseme names) made by a person")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--plot", help="write a PNG of mouth opening, sound level and per-frame landmark distance over time")
    p.add_argument("--side_by_side", help="write an MP4 of the result beside the reference and/or source, labelled, "
                                          "over their mouth-opening curves")
    p.add_argument("--detector", default="hog", help="face detector backend (hog, cnn, face_alignment)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or table")
    return p


def _evaluate(args: argparse.Namespace) -> int:
    from .eval.evaluation import evaluate, format_report

    _check_json(args.json, [args.video, args.reference, args.audio, args.source, args.annotations])
    result = evaluate(video=args.video, reference=args.reference, audio=args.audio, source=args.source,
                      annotations=args.annotations,
                      plot=args.plot, side_by_side=args.side_by_side, detector=args.detector, quiet=args.quiet)
    _maybe_json(args.json, result)
    if not args.quiet:
        print(format_report(result))
    return 0


def _check_json(path: Optional[str], inputs: List[Optional[str]]) -> None:
    """Before the work: --json names a file that can be written (not a folder, not an input)."""
    if path:
        from .io.files import check_output

        check_output(path, "JSON output", inputs=inputs)


def _maybe_json(path: Optional[str], obj) -> None:
    if path:
        import json

        from .io.files import write_file

        write_file(path, json.dumps(obj, indent=1))


def panel_parser() -> argparse.ArgumentParser:
    p = Parser(prog="evaluate.py panel",
               description="Write a blind rating page (one self-contained HTML file) for judges.")
    p.add_argument("clips", nargs="+", help="the videos to rate")
    p.add_argument("--out", required=True, help="folder for index.html (send it to judges) and key.json (keep it)")
    p.add_argument("--seed", type=int, default=None, help="fix the clip names' assignment")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    return p


def _panel(args: argparse.Namespace) -> int:
    import os

    from .eval.panel import KEY_NAME, make_panel

    page = make_panel(args.clips, args.out, seed=args.seed)
    if not args.quiet:
        print(f"wrote {page} (send it to the judges) and {os.path.join(args.out, KEY_NAME)} (keep it for tally)")
    return 0


def tally_parser() -> argparse.ArgumentParser:
    p = Parser(prog="evaluate.py tally",
               description="Mean opinion scores with 95% confidence intervals from judges' files.")
    p.add_argument("scores", nargs="+", help="the JSON files the judges sent back (globs are expanded)")
    p.add_argument("--key", help="the panel's key.json (default: beside the first scores file)")
    p.add_argument("--json", help="also write the scores to this JSON file")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    return p


def _tally(args: argparse.Namespace) -> int:
    import glob
    import os

    from .eval.panel import KEY_NAME, format_tally, tally

    files = [f for pattern in args.scores for f in (sorted(glob.glob(pattern)) or [pattern])]
    _check_json(args.json, files + [args.key])
    mos = tally([f for f in files if os.path.basename(f) != KEY_NAME], args.key)
    _maybe_json(args.json, mos)
    if not args.quiet:
        print(format_tally(mos))
    return 0


def benchmark_parser() -> argparse.ArgumentParser:
    p = Parser(prog="evaluate.py benchmark",
               description="Run the dub test with lip_sync.py over every clip in a folder.")
    p.add_argument("clips_dir", help="folder of talking-face videos with their own speech")
    p.add_argument("--out", default="docs/BENCHMARKS.md", help="markdown file to write")
    p.add_argument("--modes", default="speech", help="comma-separated: speech, silent, image")
    p.add_argument("--extra", default="", help="extra arguments for lip_sync.py, e.g. \"--model warp\"")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    return p


def _benchmark(args: argparse.Namespace) -> int:
    import shlex

    from .eval.benchmark import benchmark

    command = (f"python evaluate.py benchmark {shlex.quote(args.clips_dir)} --out {shlex.quote(args.out)} "
               f"--modes {args.modes}" + (f" --extra {shlex.quote(args.extra)}" if args.extra else ""))
    rows = benchmark(args.clips_dir, args.out, modes=[m.strip() for m in args.modes.split(",") if m.strip()],
                     extra_args=shlex.split(args.extra), quiet=args.quiet, command=command)
    if not args.quiet:
        with open(args.out, encoding="utf-8") as f:
            print(f.read())
    return 0 if all("error" not in r for r in rows) else 1


def evaluate_main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    subcommands = {"panel": (_panel, panel_parser), "tally": (_tally, tally_parser),
                   "benchmark": (_benchmark, benchmark_parser)}
    if argv and argv[0] in subcommands:
        main, make_parser = subcommands[argv[0]]
        return _run(main, make_parser(), argv[1:])
    return _run(_evaluate, evaluate_parser(), argv)


def train_parser() -> argparse.ArgumentParser:
    from .generators import checkpoint as ckpt_lib

    p = Parser(prog="lipsync-train",
               description="Train the sync model (sound -> mouth shape) on talking-face videos.")
    p.add_argument("--data", nargs="*", default=[], help="talking-face videos with their own speech, or folders of them")
    p.add_argument("--holdout", nargs="*", default=[],
                   help="never train on clips whose file names contain one of these strings; measure the model on them")
    p.add_argument("--out", default=ckpt_lib.DEFAULT_NAME, help="checkpoint to write")
    p.add_argument("--steps", type=int, default=600, help="training steps per ensemble member")
    p.add_argument("--members", type=int, default=3, help="ensemble members (seeds --seed, --seed + 1, ...)")
    p.add_argument("--lookahead", type=int, default=None,
                   help="model steps (1/40 s) of sound after each frame the model may read (default: 8, 0.2 s)")
    p.add_argument("--eval_every", type=int, default=500, help="measure on the held-out clips every this many steps")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true", help="print what each clip gave")
    return p


def _train(args: argparse.Namespace) -> int:
    from .training.train import train

    out = train(data=args.data, holdout=args.holdout, out=args.out, steps=args.steps, members=args.members,
                lookahead=args.lookahead,
                eval_every=args.eval_every, resume=args.resume, seed=args.seed, quiet=args.quiet)
    if not args.quiet:
        print(f"wrote {out}")
    return 0


def train_main(argv: Optional[List[str]] = None) -> int:
    return _run(_train, train_parser(), argv)
