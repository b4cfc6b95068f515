"""Subjective evaluation: a blind rating page for judges and the tally of their scores.

`make_panel` writes one self-contained HTML file (the clips are embedded, in a random
order, under neutral names) and a key that maps those names back to the files; judges
score each clip from 1 to 5 for sync and for naturalness and download their scores as a
JSON file. `tally` turns the returned files into mean opinion scores with 95% confidence
intervals.
"""
from __future__ import annotations

import base64
import html
import json
import math
import os
import random
import string
import subprocess
import uuid
from typing import Dict, List, Optional

from ..errors import InputError, OutputError
from ..io import jsondoc
from ..io.files import check_output, temp_dir, write_file
from ..io.media import ffmpeg_command, probe

CRITERIA = ("sync", "naturalness")
KEY_NAME = "key.json"
PAGE_NAME = "index.html"

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lip-sync rating</title>
<style>
body{{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}}
.clip{{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}}
video{{max-width:100%;max-height:420px;display:block;margin-bottom:.5em}}
fieldset{{border:none;padding:0;margin:.3em 0}} legend{{font-weight:bold}}
button{{font-size:1.1em;padding:.5em 1.2em}}
</style></head><body>
<h1>Lip-sync rating</h1>
<p>Watch each clip with sound. For each, score <b>sync</b> (do the lips match the voice?) and
<b>naturalness</b> (does the face look real and undistorted?) from 1 (bad) to 5 (excellent).
When every clip is scored, press the button and send the downloaded file back.</p>
<p><label>Your name or initials: <input id="judge" size="20"></label></p>
<div id="clips">
{clips}
</div>
<button id="save">Download my scores</button> <span id="msg"></span>
<script>
const PANEL_ID = {panel_id};
const CLIPS = {clip_ids};
const CRITERIA = {criteria};
(function shuffleForThisJudge() {{  // a fresh order for each judge, against order effects
  const box = document.getElementById("clips");
  const items = Array.from(box.children);
  for (let i = items.length - 1; i > 0; i--) {{
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }}
  items.forEach(el => box.appendChild(el));
}})();
document.getElementById("save").onclick = function () {{
  const scores = {{}};
  for (const c of CLIPS) {{
    scores[c] = {{}};
    for (const k of CRITERIA) {{
      const picked = document.querySelector('input[name="' + c + '-' + k + '"]:checked');
      if (!picked) {{ document.getElementById("msg").textContent = "Please score clip " + c + " for " + k + "."; return; }}
      scores[c][k] = parseInt(picked.value, 10);
    }}
  }}
  const judge = document.getElementById("judge").value.trim() || "anonymous";
  const blob = new Blob([JSON.stringify({{panel_id: PANEL_ID, judge: judge, scores: scores}}, null, 1)],
                        {{type: "application/json"}});
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "scores-" + judge.replace(/[^A-Za-z0-9_-]/g, "_") + ".json";
  document.body.appendChild(a); a.click(); a.remove();
  document.getElementById("msg").textContent = "Saved.";
}};
</script></body></html>
"""


def _clip_block(clip_id: str, data_uri: str) -> str:
    rows = []
    for k in CRITERIA:
        radios = " ".join(f'<label><input type="radio" name="{clip_id}-{k}" value="{v}"> {v}</label>' for v in range(1, 6))
        rows.append(f"<fieldset><legend>{k}</legend>{radios}</fieldset>")
    return (f'<div class="clip"><h2>Clip {html.escape(clip_id)}</h2>'
            f'<video controls preload="metadata" src="{data_uri}"></video>{"".join(rows)}</div>')


def _playable_mp4(clip: str) -> str:
    """The clip as base64 H.264/AAC MP4 that browsers play (re-encoded unless it is already .mp4)."""
    if clip.lower().endswith((".mp4", ".m4v")):
        with open(clip, "rb") as f:
            return base64.b64encode(f.read()).decode("ascii")
    with temp_dir("panel") as work:
        out = os.path.join(work, "clip.mp4")
        proc = subprocess.run(ffmpeg_command("-i", clip,
                               "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                               "-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart", out), capture_output=True)
        if proc.returncode != 0:
            raise InputError(f"{clip}: could not convert it to MP4 for the page")
        with open(out, "rb") as f:
            return base64.b64encode(f.read()).decode("ascii")


def make_panel(clips: List[str], out_dir: str, *, seed: Optional[int] = None) -> str:
    """Writes out_dir/index.html (clips embedded, anonymised, shown in a new random order to
    each judge) and out_dir/key.json.

    Returns the page's path. Send judges only the page; keep the key for `tally`.
    """
    if len(clips) < 1:
        raise InputError("panel needs at least one clip")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise OutputError(f"{out_dir}: is a file; the panel needs a folder for {PAGE_NAME} and {KEY_NAME}")
    for name in (PAGE_NAME, KEY_NAME):
        check_output(os.path.join(out_dir, name), "panel", inputs=clips)
    for clip in clips:
        info = probe(clip)
        if not info.has_video or info.is_image:
            raise InputError(f"{clip}: not a video")
    rng = random.Random(seed)
    order = list(clips)
    rng.shuffle(order)
    names = [string.ascii_uppercase[i % 26] + (str(i // 26) if i >= 26 else "") for i in range(len(order))]
    panel_id = uuid.UUID(int=rng.getrandbits(128)).hex
    blocks = [_clip_block(name, f"data:video/mp4;base64,{_playable_mp4(clip)}") for name, clip in zip(names, order)]
    page = _PAGE.format(clips="\n".join(blocks), panel_id=json.dumps(panel_id), clip_ids=json.dumps(names),
                        criteria=json.dumps(list(CRITERIA)))
    page_path = os.path.join(out_dir, PAGE_NAME)
    write_file(page_path, page)
    key = {"panel_id": panel_id, "clips": {n: os.path.abspath(c) for n, c in zip(names, order)}}
    write_file(os.path.join(out_dir, KEY_NAME), json.dumps(key, indent=1))
    return page_path


def _t_quantile_975(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def tally(score_files: List[str], key_path: Optional[str] = None) -> Dict[str, Dict[str, dict]]:
    """Mean opinion score per clip and criterion: {clip: {criterion: {n, mean, std, ci95}}}.

    ci95 is the half-width of the 95% confidence interval of the mean (Student's t).
    The key (default: key.json beside the first score file) maps the page's names to files.
    """
    if not score_files:
        raise InputError("tally needs at least one score file")
    key_path = key_path or os.path.join(os.path.dirname(os.path.abspath(score_files[0])), KEY_NAME)
    key = jsondoc.read(key_path, "panel key")
    panel_id = jsondoc.require(key, "panel_id", str, key_path, "panel key")
    clips = jsondoc.require(key, "clips", dict, key_path, "panel key", check=lambda c: c and all(
        isinstance(v, str) for v in c.values()), expected="an object of clip names and their files")
    collected: Dict[str, Dict[str, List[int]]] = {name: {k: [] for k in CRITERIA} for name in clips}
    for path in score_files:
        doc = jsondoc.read(path, "scores file")
        if jsondoc.require(doc, "panel_id", str, path, "scores file") != panel_id:
            raise InputError(f"{path}: scores from another panel (panel_id does not match {key_path})")
        for name, scores in jsondoc.require(doc, "scores", dict, path, "scores file", default={}).items():
            if name not in collected:
                raise InputError(f"{path}: unknown clip {name!r}")
            for k in CRITERIA:
                collected[name][k].append(jsondoc.require(scores, k, int, path, f"clip {name} scores",
                                                          check=lambda v: 1 <= v <= 5, expected="a whole number 1-5"))
    out: Dict[str, Dict[str, dict]] = {}
    for name, per in collected.items():
        label = os.path.basename(clips[name])
        out[label] = {}
        for k, values in per.items():
            n = len(values)
            mean = sum(values) / n if n else float("nan")
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
            ci = _t_quantile_975(n - 1) * std / math.sqrt(n) if n > 1 else float("nan")
            out[label][k] = {"n": n, "mean": round(mean, 3), "std": round(std, 3), "ci95": round(ci, 3)}
    return out


def format_tally(mos: Dict[str, Dict[str, dict]]) -> str:
    lines = [f"{'clip':32} " + " ".join(f"{k + ' MOS':>18}" for k in CRITERIA) + "   judges"]
    for clip, per in mos.items():
        cells = " ".join(f"{per[k]['mean']:>8.2f} +- {per[k]['ci95']:<6.2f}" for k in CRITERIA)
        lines.append(f"{clip:32} {cells}   {per[CRITERIA[0]]['n']}")
    return "\n".join(lines)
