"""How well evaluate.py finds sound-to-mouth offsets: the table of known shifts in the README.

Each clip (in sync, or with an offset of its own) is remuxed with its sound delayed (the sound
stream starts late) or advanced (the picture starts late) by known amounts, as phone and
screen recordings and files muxed with an offset arrive; the offset evaluate reports must move
by the shift. Also: each clip's own sound against other clips' sound (sync_score, and the
learned scorer's speaking score), and the learned scorer's own offset search (LSE-C style).

    python benchmarks/offsets.py                       # GRID and the speech clips of ../shared/data/video
    python benchmarks/offsets.py --clips a.mp4 b.mp4 --shifts_ms 200 400 -200
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lipsync.eval import asd, avsync  # noqa: E402
from lipsync.face.track import TrackSettings, track_media  # noqa: E402
from lipsync.io import audio as audio_lib  # noqa: E402
from lipsync.io.media import VideoReader, ffmpeg_command, probe  # noqa: E402
from lipsync.progress import Progress  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")
SPEECH = ("retalk_1", "retalk_2", "retalk_4", "lp_d20")


def shifted(clip: str, ms: int, folder: str) -> str:
    """A copy of `clip` whose sound starts `ms` late (or whose picture starts -ms late); streams copied."""
    out = os.path.join(folder, f"{os.path.splitext(os.path.basename(clip))[0]}_{ms:+d}ms.mkv")
    late = f"{abs(ms) / 1000:.3f}"
    if ms >= 0:  # the sound's stream starts late
        args = ["-i", clip, "-itsoffset", late, "-i", clip]
    else:  # the picture's stream starts late: the sound is early
        args = ["-itsoffset", late, "-i", clip, "-i", clip]
    subprocess.run(ffmpeg_command("-y", *args, "-map", "0:v:0", "-map", "1:a:0", "-c", "copy", out), check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="*", help="talking-face videos with their own speech")
    ap.add_argument("--shifts_ms", nargs="*", type=int, default=[200, 400, -200])
    ap.add_argument("--no_asd", action="store_true", help="skip the learned scorer's columns (quicker)")
    args = ap.parse_args()
    clips = args.clips or sorted(glob.glob(os.path.join(DATA, "grid", "*.mpg"))) + \
        [os.path.join(DATA, "video", c + ".mp4") for c in SPEECH]
    clips = [c for c in clips if os.path.exists(c)]
    if not clips:
        sys.exit("no clips: pass --clips or put ../shared/data beside the project")
    scorer = None if args.no_asd else avsync.load_scorer()

    def read(path):  # what evaluate reads of a file: its face at 25 fps, mouth opening, sound
        info = probe(path)
        track = track_media(info, info.fps, TrackSettings(thorough=True), progress=Progress(True))
        faces = avsync.face_crops(VideoReader(info, asd.FPS, exact=False), track.landmarks, info.fps)
        return info.fps, faces, audio_lib.load_audio(path), avsync.at_rate(track.openings, info.fps, len(faces))

    data = {clip: read(clip) for clip in clips}

    if len(clips) < 2:
        sys.exit("give at least two clips: each is also scored against the others' sound")

    def sound_lead(path, fps):  # seconds the sound stream starts after the first decoded frame
        video_start, audio_start = audio_lib.stream_starts(path)
        held = round((video_start or 0.0) * fps)  # the decoder holds the first frame this many frames
        return (audio_start or 0.0) - held / fps

    def reported(found, fps):  # as evaluate reports it: in the video's own frames
        return None if found.frames is None else int(round(found.frames * fps / asd.FPS))

    def cell(frames):
        return "   -" if frames is None else f"{frames:+3d}"

    head = f"{'clip':12} {'fps':>5} {'own':>9} " + " ".join(f"{f'{ms:+d} ms':>12}" for ms in args.shifts_ms)
    head += f" {'sync own':>8} {'others':>6}" + ("" if scorer is None else f" {'speak own':>9} {'others':>6} {'asd moved':>9}")
    print(head)
    hits = total = own_wins = asd_hits = speak_wins = pair_wins = pairs = 0
    with tempfile.TemporaryDirectory() as folder:
        for clip, (fps, faces, wav, opens) in data.items():
            base = avsync.sound_offset(faces, wav, opens)
            base_frames = reported(base, fps)
            base_lead = sound_lead(clip, fps)
            asd_base = None if scorer is None else avsync.shift_scores(scorer, asd.mfcc(wav), faces).offset
            cells, asd_moved = [], 0
            for ms in args.shifts_ms:
                moved_path = shifted(clip, ms, folder)
                _, moved_faces, moved_wav, moved_opens = read(moved_path)
                found = avsync.sound_offset(moved_faces, moved_wav, moved_opens)
                frames = reported(found, fps)
                # the shift of the sound against the decoded frames: ms, plus what remuxing did to a
                # picture that starts late (its held first frames), for clips whose picture does
                want = (sound_lead(moved_path, fps) - base_lead) * fps
                ok = frames is not None and base_frames is not None and abs(frames - base_frames - want) <= 1
                hits += ok
                total += 1
                cells.append(f"{cell(frames)} c{found.confidence:.2f}{'' if ok else ' x'}".rjust(12))
                if scorer is not None:
                    got = avsync.shift_scores(scorer, asd.mfcc(moved_wav), moved_faces).offset
                    asd_moved += got is not None and asd_base is not None and abs(got - asd_base - ms / 1000 * asd.FPS) <= 1
            others = [o[2] for c, o in data.items() if c != clip]
            other_scores = [avsync.sound_offset(faces, np.resize(o, len(wav)), opens).score for o in others]
            own_wins += base.score > max(other_scores)
            pair_wins += sum(base.score > o for o in other_scores)
            pairs += len(other_scores)
            row = f"{os.path.basename(clip)[:12]:12} {fps:5.2f} {cell(base_frames)} c{base.confidence:.2f} " + " ".join(cells)
            row += f" {base.score:8.2f} {max(other_scores):6.2f}"
            if scorer is not None:
                own = float(np.mean(avsync.speaking(scorer, wav, faces)))
                other = max(float(np.mean(avsync.speaking(scorer, np.resize(o, len(wav)), faces))) for o in others)
                speak_wins += own > other
                asd_hits += asd_moved
                row += f" {own:9.2f} {other:6.2f} {asd_moved:>5d}/{len(args.shifts_ms)}"
            print(row, flush=True)
    print(f"\noffset moved by the shift within one frame: {hits}/{total} ({100 * hits / max(1, total):.0f}%)")
    print(f"own sound's sync_score above every other clip's sound: {own_wins}/{len(data)} clips; "
          f"above another clip's sound: {pair_wins}/{pairs} pairs ({100 * pair_wins / max(1, pairs):.0f}%)")
    if scorer is not None:
        print(f"learned scorer: own sound's speaking score above every other clip's: {speak_wins}/{len(data)}; "
              f"its own offset search moved by the shift within one frame: {asd_hits}/{total}")


if __name__ == "__main__":
    main()
