"""What one request to the page may cost (serve/bounds.py): an upload over the duration limit refused at once,
an answer over its time stopped with a line and the next one answered, one request at a time per visitor;
and live slots that free themselves (serve/live_page.py): four ended streams leave room for a fifth, the
slot check before any connection, one live source per visitor."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
from http_files import serve_folder
from videos import COLOURS, write_colours

from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError
from video_classifier.data.decoding import Decoding
from video_classifier.serve.bounds import ANSWER_MAX_S, Limits, OnePerVisitor, minutes
from video_classifier.serve.live_page import LIVE_SESSIONS, LiveSources
from video_classifier.serve.stream_targets import StreamTargets
from video_classifier.serve.web import answer, build_page, load_demo, serve


@pytest.fixture(scope="module")
def demo(colour_model):
    config, folder = colour_model
    return load_demo(str(folder), load_config(config))


def counted(decoding: Decoding, calls: list, pause_s: float = 0.0) -> Decoding:
    """`decoding` that notes each decode (and waits `pause_s` first: a slow server)."""
    def decode(*args, **kwargs):
        calls.append(args[1])
        time.sleep(pause_s)
        return decoding.decode(*args, **kwargs)

    return Decoding("pyav", decode, "counted")


def test_minutes_reads_as_people_write_durations():
    assert [minutes(s) for s in (4.0, 59.94, 60, 605, 3600)] == ["4.0 s", "59.9 s", "1 min", "10 min 5 s", "60 min"]


def test_a_video_over_the_duration_limit_is_refused_before_it_is_decoded(demo, tmp_path):
    write_colours(tmp_path / "long.avi", [("Red", 100)])  # 4 s at 25 fps
    calls = []
    bounded = dataclasses.replace(demo, limits=Limits(upload_minutes=3 / 60), decoding=counted(demo.decoding, calls))
    got = answer(bounded, str(tmp_path / "long.avi"), tmp_path / "out")
    assert got.status == ("error: long.avi is 4.0 s long, over the page's 3.0 s: cut it shorter, or run infer.py "
                          "--timeline on it"), got.status
    assert calls == [] and got.labels == {}
    assert answer(dataclasses.replace(bounded, limits=Limits(upload_minutes=5 / 60)), str(tmp_path / "long.avi"),
                  tmp_path / "out").labels  # within the limit: answered


def test_an_answer_over_its_time_stops_with_a_line_and_the_next_is_answered(demo, tmp_path):
    """A 20-s video read from a slow disk (0.1 s a decode): its timeline would take over 10 s; the page's limit
    of 1 s stops it within one decode of the limit, says so, and the next video is answered in full."""
    write_colours(tmp_path / "long.avi", [("Red", 250), ("Blue", 250)])
    write_colours(tmp_path / "short.avi", [("Green", 30)])
    calls = []
    slow = dataclasses.replace(demo, limits=Limits(answer_s=1.0), decoding=counted(demo.decoding, calls, 0.1))
    began = time.monotonic()
    got = answer(slow, str(tmp_path / "long.avi"), tmp_path / "out")
    took = time.monotonic() - began
    assert got.status == ("error: stopped after 1 s, the page's limit per answer; run infer.py on this video for "
                          "its whole answer"), got.status
    assert took < 1.0 + 0.1 * 3 + 2.0 and len(calls) < 30, (took, len(calls))  # not the ~80 windows' decodes
    following = answer(slow, str(tmp_path / "short.avi"), tmp_path / "out")
    assert following.status.startswith("short.avi (") and list(following.labels)[0] == "Green", following.status


def test_one_request_at_a_time_per_visitor():
    visitors, inside = OnePerVisitor(), threading.Event()
    with visitors.turn("a"):
        with pytest.raises(UserError, match="^one video at a time: "):
            with visitors.turn("a"):
                pass
        with visitors.turn("b"):  # another visitor is answered meanwhile
            inside.set()
    with visitors.turn("a"):  # the first answer done: the next is taken
        pass
    assert inside.is_set() and visitors.busy == set()


@pytest.fixture()
def stream(tmp_path):
    write_colours(tmp_path / "v.avi", [("Blue", 10)], seed=2)  # 0.4 s
    with serve_folder(tmp_path) as server:
        yield server, f"{server.url}/v.avi"


def test_four_streams_that_ended_leave_room_for_a_fifth(demo, stream):
    server, url = stream
    sources = LiveSources(demo.model, demo.spec, StreamTargets(allow_private=True))
    for k in range(LIVE_SESSIONS + 1):
        line, _ = list(sources.play_url(f"visitor-{k}", url, update_every=0.1))[-1]
        assert line.endswith("the stream ended") and not line.startswith("error"), (k, line)
        assert sources.sessions == {}
    failed = list(sources.play_url("visitor-x", f"{server.url}/missing.avi"))  # failed: its slot is freed too
    assert failed[-1][0].startswith("error: could not open the stream") and sources.sessions == {}


def test_the_slot_check_comes_before_a_connection_and_a_visitor_holds_one_source(demo, stream):
    server, url = stream
    sources = LiveSources(demo.model, demo.spec, StreamTargets(allow_private=True))
    red = np.full((48, 64, 3), COLOURS["Red"], np.uint8)
    for k in range(LIVE_SESSIONS):
        sources.camera_frame(f"camera-{k}", red)
    ((line, _),) = list(sources.play_url("late", url))
    assert line.startswith(f"error: busy: {LIVE_SESSIONS} live sources") and server.seen == []
    playing = sources.play_url("camera-0", url, update_every=0.05)  # a camera's visitor plays a URL instead
    next(playing)
    assert len(sources.sessions) == LIVE_SESSIONS and sources.get("camera-0").live.name == "v.avi"
    playing.close()  # the page's Stop button: the slot is freed
    assert "camera-0" not in sources.sessions and len(sources.sessions) == LIVE_SESSIONS - 1
    for k in range(1, LIVE_SESSIONS):
        sources.stop(f"camera-{k}")
    assert sources.sessions == {}


def test_the_page_says_on_start_what_it_allows(demo):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page = build_page(dataclasses.replace(demo, limits=Limits(upload_mb=50, upload_minutes=2)), [])
    serve(page, "127.0.0.1", port, block=False)
    line = page.allows  # the line serve() printed on stderr
    page.close()
    assert line == (f"page on 127.0.0.1: uploads up to 50 MB and 2 min, each answer stopped after {ANSWER_MAX_S:.0f} s; "
                    "live streams from any address (private ones too)"), line
    assert page.live_sources.targets.allow_private
