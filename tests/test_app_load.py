"""The page under several clients at once, and what it leaves on disk: the preview a browser plays, answers
equal to infer.py's while two clients upload at once, the queue's bound, and no file left behind once the
page's keeping time has passed (bench/page_load.py measures the same at size, with timings)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import av
import pytest
import videos
from conftest import run_main

from video_classifier.core.config import load_config
from video_classifier.data.decoding import probe_header
from video_classifier.data.manifest import load_prepared
from video_classifier.serve.preview import PREVIEW_HEIGHT, preview
from video_classifier.serve.web import build_page, load_demo, serve, tidy


def test_a_video_the_browser_cannot_play_gets_an_h264_copy_of_the_same_length(tmp_path):
    avi = videos.write(tmp_path / "clip.avi", n=30)  # MPEG-4 Part 2 in AVI, as the demo's: 1.2 s at 25 fps
    seen = preview(avi, tmp_path)
    assert seen.path == tmp_path / "clip.preview.mp4" and "H.264" in seen.note and "mpeg4 in .avi" in seen.note
    with av.open(str(seen.path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.height <= PREVIEW_HEIGHT
    assert probe_header(seen.path) == pytest.approx(probe_header(avi), abs=0.04)  # frames, fps, seconds
    again = preview(seen.path, tmp_path / "nowhere")  # H.264 in MP4 plays as it is: no copy
    assert again.path == seen.path and again.note == ""


@pytest.mark.parametrize("kind, options", [("hevc", {}), ("mov", {"rotation": 90}), ("mjpeg", {"variable_rate": True}),
                                           ("h264", {"pix_fmt": "yuv420p10le"})],
                         ids=["hevc", "rotated", "vfr", "10-bit h264 in mp4"])
def test_a_phones_video_is_copied_upright_and_in_step(tmp_path, kind, options):
    original = videos.write(tmp_path / "phone", kind=kind, n=40, **options)
    seen = preview(original, tmp_path)
    assert seen.path == tmp_path / "phone.preview.mp4", seen.note  # a copy, in 8-bit 4:2:0 H.264
    with av.open(str(seen.path)) as copy:
        assert copy.streams.video[0].codec_context.pix_fmt == "yuv420p"
    with av.open(str(original)) as source, av.open(str(seen.path)) as copy:
        times = [round(f.time, 3) for f in source.decode(video=0)]
        frames = list(copy.decode(video=0))
    assert [round(f.time, 3) for f in frames] == pytest.approx(times, abs=0.0011)  # each frame at its time
    upright = (48, 64) if not options.get("rotation") else (64, 48)  # (H, W) as a player shows the original
    assert (frames[0].height, frames[0].width) == upright


def test_a_file_that_is_not_a_video_has_no_preview_and_one_line(tmp_path):
    text = tmp_path / "notes.avi"
    text.write_text("not a video\n")
    seen = preview(text, tmp_path)
    assert seen.path is None and seen.note.startswith("notes.avi cannot be shown here: ") and "\n" not in seen.note


def test_tidy_deletes_only_what_is_old_and_empty_or_the_pages_own(tmp_path):
    cache, out = tmp_path / "gradio", tmp_path / "gradio" / "video-classifier-page-x"
    answer, empty_hash, full_hash = out / "tmpanswer1", cache / ("a" * 64), cache / ("b" * 64)
    for folder in (answer, empty_hash, full_hash, cache / "someone-elses"):
        folder.mkdir(parents=True)
    (answer / "v.timeline.json").write_text("{}")
    (full_hash / "v.avi").write_bytes(b"data")
    (cache / "tmpab12cd34").touch()  # what gradio's upload parser leaves
    (cache / "tmpab12cd35").write_bytes(b"x")
    young = cache / "tmpyoung123"
    young.touch()
    old = time.time() - 100
    for path in [*cache.rglob("*"), cache]:
        if path != young:
            os.utime(path, (old, old))
    tidy(cache, out, keep_s=50)
    assert not answer.exists() and not empty_hash.exists() and not (cache / "tmpab12cd34").exists()
    assert (full_hash / "v.avi").is_file() and (cache / "someone-elses").is_dir() and out.is_dir()
    assert (cache / "tmpab12cd35").is_file() and young.is_file()


@pytest.fixture()
def page_url(trained, tmp_path, monkeypatch):
    """The tiny run's page on a free loopback port, with its own gradio cache, keeping files 1 s, answering
    one at a time, holding two requests in its queue."""
    config_path, folder, _ = trained
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # read when the page is built
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page = build_page(load_demo(str(folder), load_config(config_path)), [], keep_s=1, sweep_s=1, slots=1,
                      queue_size=2)
    serve(page, "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}/", tmp_path / "gradio"
    page.close()


def at_once(url: str, uploads: list[list[Path]]) -> list[tuple[str, str | None, str | None]]:
    """One gradio_client per list, all starting together, each uploading its videos one after another:
    (video name, the status line or None, the error or None) per upload."""
    from gradio_client import Client, handle_file

    clients = [Client(url, verbose=False, download_files=False) for _ in uploads]
    start, results = threading.Barrier(len(uploads)), []

    def send(client, paths):
        start.wait()
        for path in paths:
            try:
                results.append((path.name, client.predict(handle_file(str(path)), api_name="/answer")[2], None))
            except Exception as err:  # the queue's refusal: gradio_client's QueueError
                results.append((path.name, None, f"{type(err).__name__}: {err}"))

    threads = [threading.Thread(target=send, args=pair) for pair in zip(clients, uploads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def files_in(folder: Path) -> int:
    return sum(p.is_file() for p in folder.rglob("*"))


def test_clients_at_once_get_infers_answers_and_leave_no_files(trained, page_url):
    url, cache = page_url
    config_path, folder, _ = trained
    config = load_config(config_path)
    _, records = load_prepared(config.data.root)
    first, second, third = [Path(config.data.root) / r.path for r in records if r.split == "test"][:3]
    infer = {Path(p["video"]).name: f"{Path(p['video']).name} ({p['views']}): " + ", ".join(
        f"{label} {score:.4f}" for label, score in zip(p["labels"], p["scores"]))
        for p in json.loads(run_main("infer.py", str(first), str(second), str(third), "--model", str(folder),
                                     "--json").stdout)}
    before = files_in(cache)
    results = at_once(url, [[first, second], [second, third]])  # never more than two waiting: all served
    assert [r for r in results if r[1] != infer[r[0]]] == []
    crowd = at_once(url, [[first]] * 8)  # eight at once against one slot and two places in the queue
    refused = [r[2] for r in crowd if r[2]]
    assert refused and all("Queue is full" in e for e in refused), crowd
    assert all(status == infer[name] for name, status, _ in crowd if status is not None)
    deadline = time.time() + 30  # kept 1 s, looked at every second: on busy cores allow more
    while files_in(cache) > before and time.time() < deadline:
        time.sleep(0.5)
    assert files_in(cache) <= before, sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file())
