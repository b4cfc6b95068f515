"""The web page and HTTP API (lipsync/web/): its parts without a server, then a real server
driven by gradio_client, by plain HTTP and, in headless Chromium, by a person's clicks.

Without Gradio or a Chromium browser the server tests skip with the reason; under CI=true
(where .ci/run installs both) they fail instead.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from conftest import ROOT, encode_frames, moving_face_frames, speechlike, write_wav
from lipsync import web as app
from lipsync.errors import InputError, NoFaceError
from lipsync.io.media import probe

IN_CI = os.environ.get("CI") == "true"
UPLOAD_LIMIT_MB = 2  # the test server's limit; the test clips are far smaller


def need(what: str, why: str):
    """Skip (fail under CI=true) for a missing test dependency."""
    if IN_CI:
        pytest.fail(f"{what} is missing under CI ({why})")
    pytest.skip(f"{what} is missing: {why}")


def chromium() -> str:
    for name in (os.environ.get("LIPSYNC_CHROMIUM"), "chromium", "chromium-browser"):
        path = name and shutil.which(name)
        if path:
            return path
    need("a Chromium browser", "apt-get install chromium (.ci/run does it)")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("app_media")
    files = {"video": encode_frames(str(d / "face.mp4"), moving_face_frames(50), 25),
             "wav": write_wav(str(d / "speech.wav"), speechlike(3.0), 16000),
             "bad": str(d / "bad.mp4"), "bad_photo": str(d / "bad.jpg")}
    for path in (files["bad"], files["bad_photo"]):
        with open(path, "w") as f:
            f.write("this is text, not a video or a photo")
    blank = [np.full((96, 96, 3), 90, np.uint8) for _ in range(10)]
    files["noface"] = encode_frames(str(d / "noface.mp4"), blank, 25)
    return files


# --- without a server --------------------------------------------------------------------------

def test_sessions_end_removes_the_results_and_the_uploads_no_other_session_uses(tmp_path):
    sessions = app.Sessions(str(tmp_path), keep_s=3600)
    shared_upload, own_upload = tmp_path / "h1" / "clip.mp4", tmp_path / "h2" / "voice.wav"
    for path in (shared_upload, own_upload):
        path.parent.mkdir()
        path.write_bytes(b"x")
    result = sessions.result_name("alice", "clip")
    open(result, "wb").close()
    assert result != sessions.result_name("alice", "clip")  # two jobs in one second do not collide
    sessions.use("alice", [str(shared_upload), str(own_upload), None])
    sessions.use("bob", [str(shared_upload)])
    job = sessions.job("alice")
    stop = job.__enter__()
    sessions.end("alice")
    assert stop.is_set()  # a job still running for the closed page stops
    job.__exit__(None, None, None)
    assert not os.path.exists(os.path.dirname(result)) and not own_upload.parent.exists()
    assert shared_upload.exists()  # bob still has it
    sessions.end("bob")
    assert not shared_upload.parent.exists()


def test_sessions_end_leaves_an_upload_another_page_made_again(tmp_path):
    """Gradio keeps uploads by content: a second page uploading the same bytes replaces the file."""
    sessions = app.Sessions(str(tmp_path), keep_s=3600)
    upload = tmp_path / "h1" / "speech.wav"
    upload.parent.mkdir()
    upload.write_bytes(b"x")
    sessions.use("api", [str(upload)])
    os.utime(upload, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # uploaded again by a page
    sessions.end("api")
    assert upload.exists()


def test_sessions_expire_idle_sessions_and_old_files_but_not_a_queued_job(tmp_path):
    sessions = app.Sessions(str(tmp_path), keep_s=60)
    uploads = {}
    for name in ("idle", "queued", "fresh", "orphan"):
        uploads[name] = tmp_path / f"h_{name}" / "clip.mp4"
        uploads[name].parent.mkdir()
        uploads[name].write_bytes(b"x")
    old = time.time() - 120
    for name in ("idle", "queued", "orphan"):
        os.utime(uploads[name], (old, old))
        os.utime(uploads[name].parent, (old, old))
    for name in ("idle", "queued", "fresh"):
        sessions.use(name, [str(uploads[name])])
        open(os.path.join(sessions.folder(name), "out.mp4"), "wb").close()
    sessions.hold("queued")  # a job waits in the queue, however long
    removed = sessions.expire(time.time() + 90)  # idle and queued were last seen 90 s ago; fresh too
    assert not uploads["idle"].exists() and not os.path.exists(os.path.join(sessions.sessions, "idle"))
    assert not uploads["orphan"].exists()  # uploaded, never used, too old
    assert uploads["queued"].exists() and os.path.exists(os.path.join(sessions.sessions, "queued", "out.mp4"))
    assert str(uploads["orphan"].parent) in removed
    assert not uploads["fresh"].exists()  # idle for 90 s as well
    with sessions.job("queued", held=True):
        pass
    sessions.expire(time.time() + 90)
    assert not uploads["queued"].exists()


def test_session_ids_cannot_leave_the_folder(tmp_path):
    sessions = app.Sessions(str(tmp_path), keep_s=60)
    assert os.path.dirname(sessions.folder("../../etc")) == sessions.sessions
    assert os.path.basename(sessions.folder("")) == "anonymous"


def test_one_line_names_uploads_by_their_own_name():
    upload = "/tmp/lipsync-x/4f2a/clip.mp4"
    assert app.one_line(InputError(f"{upload}: has no video stream"), [upload, None]) == \
        "clip.mp4: has no video stream"
    line = app.one_line(ValueError("bad\nsecond line"))
    assert line == "internal error (ValueError: bad" and "\n" not in line


def test_stage_reporter_names_each_stage_with_its_own_fraction():
    seen = []
    report = app.stage_reporter(lambda fraction, text: seen.append((fraction, text)))
    report("tracking face", 10, 50)
    report("personalizing", 0, None)
    report("lip-syncing", 75, 75)
    assert seen == [(0.2, "tracking the face: 10 / 50"), (0.0, "personalizing"), (1.0, "rendering: 75 / 75")]


def test_microphone_chunks_become_16k_mono():
    t = np.arange(4800) / 48000
    tone = np.sin(2 * np.pi * 440 * t)
    stereo = (np.stack([tone, tone], axis=1) * 16384).astype(np.int16)  # 0.1 s at 48 kHz, two channels
    got = app.to_16k_mono(stereo, 48000)
    assert got.dtype == np.float32 and got.shape == (1600,)
    want = 0.5 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)
    assert np.abs(got[100:-100] - want[100:-100]).max() < 0.01
    np.testing.assert_allclose(app.to_16k_mono(want, 16000), want, atol=1e-6)  # already 16 kHz mono: as it is


def test_figures_table_shows_known_figures_in_order():
    table = app.figures_table({"av_sync_confidence": 3.14159, "av_offset_frames": 0, "lmd": None, "other": 1})
    rows = table.splitlines()
    assert rows[2] == "| sync offset (frames; 0 is in sync) | 0 |"
    assert rows[3] == "| sync confidence (higher is surer) | 3.14 |"
    assert rows[4].endswith("| - |") and "other" not in table


def test_share_and_bad_options_are_refused_in_one_line(capsys):
    assert app.main(["--share"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --share is refused: a public link") and "\n" not in err
    assert app.main(["--port", "70000"]) == 2
    assert "port 70000: must be from 1 to 65535" in capsys.readouterr().err
    assert app.main(["--keep_minutes", "0"]) == 2
    assert "must be more than 0" in capsys.readouterr().err


def test_an_address_that_cannot_be_served_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{port}: port {port} is taken"):
            app.check_address("127.0.0.1", port)
    with pytest.raises(InputError, match="--host nosuch.invalid: not a known address"):
        app.check_address("nosuch.invalid", 7860)
    app.check_address("127.0.0.1", port)  # free again


def test_measure_with_a_reference_gives_the_other_figures(clips, cache_dir, tmp_path):
    from lipsync.pipeline import lip_sync

    page = app.App(app.Sessions(str(tmp_path), keep_s=60))
    result = lip_sync(video_path=clips["video"], audio_path=clips["wav"], model="warp", quiet=True,
                      outfile=page.sessions.result_name("s1", "face")).outfile
    figures, plot = page.measure("s1", result, clips["wav"], reference=clips["video"])
    assert os.path.getsize(plot) > 0 and os.path.dirname(plot) == page.sessions.folder("s1")
    table = app.figures_table(figures)
    for label in ("sync offset", "mouth opening vs reference", "landmark distance to reference"):
        assert label in table


def test_stop_ends_a_run_with_nothing_written(clips, cache_dir, tmp_path):
    from lipsync.errors import Cancelled

    page = app.App(app.Sessions(str(tmp_path), keep_s=60))
    page.stop("s1")  # a stop pressed before the run does not stop the next one
    stages = []

    def progress(stage, done, total):
        stages.append(stage)
        if stage == "lip-syncing" and done >= 16:
            page.stop("s1")

    with pytest.raises(Cancelled):
        page.lip_sync("s1", clips["video"], clips["wav"], None, model="warp", progress=progress)
    assert "tracking face" in stages and stages[-1] == "lip-syncing"
    assert os.listdir(page.sessions.folder("s1")) == []


def test_preview_draws_one_frame_of_the_lower_face(clips, cache_dir):
    from lipsync.pipeline import preview

    shot = preview(video_path=clips["video"], audio_path=clips["wav"], model="warp", quiet=True)
    assert shot.frame.shape == shot.original.shape == (256, 256, 3)
    assert 0 < shot.time < 3.0 and 0 <= shot.source_frame < 50
    changed = np.abs(shot.frame.astype(int) - shot.original).max(axis=(1, 2)) > 0
    nose = int(shot.face[33, 1])
    assert changed[nose + 5:].any() and not changed[:nose - 10].any()  # the mouth moved, the eyes did not
    crops = app.face_crops(shot.original, shot.frame, shot.face)
    assert crops.shape[0] == 320 and crops.dtype == np.uint8


def test_preview_checks_like_a_run(clips, cache_dir):
    from lipsync.pipeline import preview

    with pytest.raises(NoFaceError, match="noface.mp4: no face found in any frame"):
        preview(video_path=clips["noface"], audio_path=clips["wav"], model="warp", quiet=True)
    with pytest.raises(InputError, match="no sound given"):
        preview(video_path=clips["video"], model="warp", quiet=True)
    with pytest.raises(InputError, match="bad.mp4"):
        preview(video_path=clips["bad"], audio_path=clips["wav"], model="warp", quiet=True)


# --- a real server -----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python app.py` on a free port, with its own TMPDIR and cache; stopped (SIGTERM) at the end,
    when its temporary folder must be gone."""
    import importlib.util

    if importlib.util.find_spec("gradio") is None or importlib.util.find_spec("gradio_client") is None:
        need("Gradio", "pip install -r requirements-ui.txt (bash run.sh test installs it)")
    tmp = tmp_path_factory.mktemp("app_server")
    env = dict(os.environ, TMPDIR=str(tmp), LIPSYNC_CACHE_DIR=str(tmp / "cache"))
    port = _free_port()
    log = open(tmp / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "app.py"), "--port", str(port), "--max_upload_mb",
                             str(UPLOAD_LIMIT_MB)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                log.seek(0)
                pytest.fail(f"the app did not start:\n{log.read()}")
            time.sleep(0.5)
    roots = [p for p in os.listdir(tmp) if "-ui-" in p]
    assert len(roots) == 1  # the app's one temporary folder
    yield {"url": url, "root": os.path.join(tmp, roots[0]), "log": log}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not os.path.exists(os.path.join(tmp, roots[0]))  # stopping removes every upload and result


def _duration(path: str) -> float:
    return probe(path).duration


def test_api_with_gradio_client(server, clips):
    from gradio_client import Client, handle_file

    client = Client(server["url"], verbose=False)
    assert "/lip_sync" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    video, summary = client.predict(video=handle_file(clips["video"]), audio=handle_file(clips["wav"]), text="",
                                    model="sync", personalize="auto", api_name="/lip_sync")
    assert abs(_duration(video) - 3.0) < 0.1
    assert summary.startswith("wrote face_lipsync_") and "75 frames at 25 fps" in summary
    with pytest.raises(Exception, match=r"^bad\.mp4: not a readable video or audio file"):
        client.predict(video=handle_file(clips["bad"]), audio=handle_file(clips["wav"]), text="", model="sync",
                       personalize="auto", api_name="/lip_sync")
    with pytest.raises(Exception, match=r"unknown model 'nope'"):
        client.predict(video=handle_file(clips["video"]), text="Hello.", model="nope", api_name="/lip_sync")
    video, summary = client.predict(video=handle_file(clips["video"]), text="Hello.", api_name="/lip_sync")
    assert summary.startswith("wrote face_lipsync_")  # audio, model and personalize may be left out


def _post(url: str, body: bytes, content_type: str) -> bytes:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    return urllib.request.urlopen(request, timeout=60).read()


def test_api_with_plain_http_as_the_readme_shows(server, clips):
    """Upload, call, read the event stream, download: the README's curl example, step by step."""
    base = server["url"] + "/gradio_api"
    boundary = "lipsyncboundary"
    with open(clips["video"], "rb") as f:
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"face.mp4\"\r\n"
                "Content-Type: video/mp4\r\n\r\n").encode() + f.read() + f"\r\n--{boundary}--\r\n".encode()
    uploaded = json.loads(_post(base + "/upload", body, f"multipart/form-data; boundary={boundary}"))[0]
    call = {"data": [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}, None, "Hello from plain HTTP.",
                     "warp", "auto"]}
    event = json.loads(_post(base + "/call/lip_sync", json.dumps(call).encode(), "application/json"))["event_id"]
    stream = urllib.request.urlopen(f"{base}/call/lip_sync/{event}", timeout=300).read().decode()
    assert "event: complete" in stream, stream
    data = json.loads(stream.split("event: complete\ndata:", 1)[1].strip().splitlines()[0])
    assert data[1].startswith("wrote face_lipsync_")
    local = os.path.join(os.path.dirname(clips["video"]), "from_http.mp4")
    with open(local, "wb") as f:
        f.write(urllib.request.urlopen(data[0]["url"], timeout=60).read())
    assert _duration(local) > 0.5  # as long as the spoken text


def test_uploads_over_the_limit_are_refused(server, tmp_path):
    body = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.mp4\"\r\n\r\n"
            + bytes(UPLOAD_LIMIT_MB * 2**20 + 1024) + b"\r\n--b--\r\n")
    with pytest.raises(urllib.error.HTTPError) as refused:
        _post(server["url"] + "/gradio_api/upload", body, "multipart/form-data; boundary=b")
    assert refused.value.code == 413
    assert not [f for _, _, files in os.walk(server["root"]) for f in files if f == "big.mp4"]


def test_one_job_at_a_time_the_others_wait_in_the_queue(server, clips):
    from gradio_client import Client, handle_file

    config = json.loads(urllib.request.urlopen(server["url"] + "/config", timeout=30).read())
    assert config["analytics_enabled"] is False
    client = Client(server["url"], verbose=False)
    args = dict(video=handle_file(clips["video"]), audio=handle_file(clips["wav"]), text="", model="warp",
                personalize="off", api_name="/lip_sync")
    jobs = [client.submit(**args) for _ in range(3)]
    waiting = []
    while not all(job.done() for job in jobs):
        status = urllib.request.urlopen(server["url"] + "/gradio_api/queue/status", timeout=30).read()
        waiting.append(json.loads(status)["queue_size"])
        time.sleep(0.05)
    assert max(waiting) == 2  # one runs, two wait
    assert all(job.result(timeout=120)[1].startswith("wrote ") for job in jobs)


def test_page_and_api_jobs_share_the_one_queue_slot(tmp_path):
    """Previews, runs, measures and API calls are one concurrency group of one: a page's run and
    an API call never run at once (each event alone would already run one at a time)."""
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        need("Gradio", "pip install -r requirements-ui.txt (bash run.sh test installs it)")
    demo = app.build(app.Sessions(str(tmp_path), keep_s=60))
    queued = [fn for fn in demo.fns.values() if fn.queue is not False and fn.fn is not None]
    unload = [fn for fn in queued if fn.name == "on_unload"]
    assert unload and unload[0].concurrency_id != "work"  # closing a page never waits for a job
    queued.remove(unload[0])
    live = [fn for fn in queued if fn.name == "on_live_chunk"]
    assert live and live[0].concurrency_id == "live"  # a live stream's chunks do not wait behind a file's run
    queued.remove(live[0])
    names = sorted(fn.name for fn in queued)
    assert names == ["api_lip_sync", "on_live_prepare", "on_measure", "on_preview", "on_run"], names
    assert {fn.concurrency_id for fn in queued} == {"work"}
    assert all(fn.concurrency_limit in ("default", 1) for fn in queued)
    assert demo._queue.default_concurrency_limit == 1


MIC_SOUND = 4.0  # seconds of speech-like sound that Chromium's fake microphone plays, in a loop


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium whose fake microphone plays a generated sound file (the Live tab's test)."""
    path = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("playwright", "pip install -r requirements-dev.txt (bash run.sh test installs it)")
    mic = write_wav(str(tmp_path_factory.mktemp("mic") / "mic.wav"), speechlike(MIC_SOUND, seed=3), 16000)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=[
            "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}"])
        yield b
        b.close()


def _open(browser, server: dict):
    """A new page on the app, with every request it makes recorded."""
    url = server["url"]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.server_log = server["log"]
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(url)
    page.wait_for_selector("#run", timeout=60000)
    return page


SHOWN = {"video": "#video video[src*='/gradio_api/file=']", "audio": "#audio audio"}  # an upload, once the page has it


def _upload(page, element: str, path: str) -> None:
    """Chooses `path` in the file input of `element`, and waits until the page shows it."""
    with page.expect_response(lambda r: "/gradio_api/upload" in r.url and r.request.method == "POST",
                              timeout=60000):
        page.locator(f"#{element} input[type=file]").set_input_files(path)
    _wait(page, SHOWN[element], 30, state="attached")


def _wait(page, selector: str, seconds: float, state: str = "visible"):
    """The element, once there; on a time-out, fails with what the page says (an error, say)."""
    try:
        return page.wait_for_selector(selector, timeout=seconds * 1000, state=state)
    except Exception:
        log = getattr(page, "server_log", None)
        said = ""
        if log is not None:
            log.flush()
            log.seek(0)
            said = f"\nthe server's log ends:\n{log.read()[-3000:]}"
        pytest.fail(f"no {selector} after {seconds} s; the page says:\n{page.inner_text('body')[:1500]}{said}")


def _only_local(page, url: str) -> None:
    outside = sorted({u for u in page.requests if not (u.startswith(url) or u.startswith(("data:", "blob:")))})
    assert not outside, f"requests that left {url}: {outside[:5]}"
    assert len(page.requests) > 5


def test_page_previews_runs_plays_and_measures_offline(server, browser, clips):
    url = server["url"]
    sessions = os.path.join(server["root"], "sessions")
    others = set(os.listdir(sessions)) if os.path.isdir(sessions) else set()  # the API tests' sessions
    page = _open(browser, server)
    _upload(page, "video", clips["video"])
    _upload(page, "audio", clips["wav"])
    page.click("#preview")
    _wait(page, "#preview_image img", 120)
    assert "preview: original | lip-synced" in page.inner_text("#preview_image")
    page.click("#run")
    _wait(page, "#result video", 240)
    duration = page.evaluate("""async () => {
        const v = document.querySelector('#result video');
        if (!(v.duration > 0)) await new Promise(r => v.addEventListener('loadedmetadata', r, {once: true}));
        return v.duration; }""")
    assert abs(duration - 3.0) < 0.1  # the browser plays the result, as long as the sound
    assert "75 frames at 25 fps" in page.input_value("#summary textarea")
    _wait(page, "#figures table", 240)
    assert "sync confidence" in page.inner_text("#figures")
    _wait(page, "#plot img", 30)
    _only_local(page, url)
    mine = set(os.listdir(sessions)) - others
    assert len(mine) == 1  # the result lives in the page's own session folder
    page.close()  # the session ends: its folder goes
    deadline = time.time() + 60
    while set(os.listdir(sessions)) & mine and time.time() < deadline:
        time.sleep(0.5)
    assert not set(os.listdir(sessions)) & mine


def test_page_shows_the_error_of_a_bad_upload(server, browser, clips):
    page = _open(browser, server)
    _upload(page, "video", clips["bad"])
    _upload(page, "audio", clips["wav"])
    page.click("#run")
    error = page.wait_for_selector("text=bad.mp4: not a readable video or audio file", timeout=60000)
    assert "Traceback" not in page.inner_text("body")
    assert error.is_visible()
    page.get_by_role("tab", name="Photo").click()
    with page.expect_response(lambda r: "/gradio_api/upload" in r.url and r.request.method == "POST"):
        page.locator("#photo input[type=file]").set_input_files(clips["bad_photo"])
    page.wait_for_timeout(1000)
    page.click("#preview")  # the photo, not the video, is used: its tab is shown and it is filled in
    error = page.wait_for_selector("text=bad.jpg: not a readable image", timeout=60000)
    assert error.is_visible() and "Traceback" not in page.inner_text("body")
    _only_local(page, server["url"])
    page.close()


def test_live_tab_turns_the_microphone_into_a_speaking_avatar(server, browser, clips):
    """Chromium's fake microphone plays a sound file (in a loop); the avatar's frames come back."""
    from lipsync.face import landmarks, track as face_track

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.server_log = server["log"]
    page.goto(server["url"])
    page.get_by_role("tab", name="Live").click()
    with page.expect_response(lambda r: "/gradio_api/upload" in r.url, timeout=60000):
        page.locator("#live_avatar input[type=file]").set_input_files(clips["video"])
    page.click("#live_prepare")
    page.wait_for_function("document.querySelector('#live_status textarea').value.startsWith('avatar ready')",
                           timeout=120000)
    page.locator("#live_mic button", has_text="Record").click()
    shown, deadline = [], time.time() + 8
    while time.time() < deadline:
        src = page.evaluate("document.querySelector('#live_out img') && document.querySelector('#live_out img').src")
        if src and src not in shown:
            shown.append(src)
        time.sleep(0.05)
    page.locator("#live_mic button", has_text="Stop").click()
    page.wait_for_function("document.querySelector('#live_status textarea').value.includes('stopped after')",
                           timeout=30000)
    status = page.input_value("#live_status textarea")
    tracker = face_track.FaceTracker(face_track.TrackSettings())
    openings = []
    for src in shown[1:]:  # read while the page is open (its session's files go when it closes)
        image = cv2.imdecode(np.frombuffer(urllib.request.urlopen(src).read(), np.uint8), cv2.IMREAD_COLOR)
        openings.append(landmarks.mouth_opening(tracker(image)))
    page.close()
    frames = int(status.split("after ")[1].split()[0])
    # the page records for about 8 s; the browser skips the microphone's chunks while the server is busy with one
    assert frames >= 25, status
    assert len(shown) >= 8, len(shown)  # the page showed the avatar as it went
    assert np.nanmax(openings) - np.nanmin(openings) > 0.04, openings  # the mouth moves with the microphone's syllables
