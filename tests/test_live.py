"""Live scoring (serve/live.py): frames pushed as a source plays give the timeline's windows, scores and
segments on the same frames (one code path), a camera's frames held on the grid as a player holds them,
memory flat over a long source, and a stream that does not open refused in one line."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import videos
from videos import COLOURS, write_colours

from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError
from video_classifier.data.decoding import choose_decoder, stream_frames
from video_classifier.serve.inference import load_model
from video_classifier.serve.live import LiveTimeline
from video_classifier.serve.timeline import timeline


@pytest.fixture(scope="module")
def colours(colour_model):
    config, folder = colour_model
    model, spec = load_model(str(folder), load_config(config), "torch")
    return model, spec


def play(live: LiveTimeline, source: str, newest_only: bool = False) -> list[str]:
    """Push every frame of `source` as it plays, scoring after each; the label shown after each window."""
    _, frames = stream_frames(source)
    shown = []
    for at, frame in frames:
        live.push(at, frame)
        if live.score(newest_only):
            shown.append(live.now()[0].label)
    live.end()
    live.score(newest_only)
    return shown


def test_live_scoring_gives_the_timelines_windows_and_segments(colours, tmp_path):
    """A 14.4-s video of four scenes: the live path's windows are --timeline's (same starts, scores equal to
    float rounding: other batches), its segments at the end are the timeline's, and the label it showed
    moved through the scenes in order, never back."""
    model, spec = colours
    video = tmp_path / "scenes.avi"
    write_colours(video, [("Red", 100), ("Blue", 90), ("Green", 110), ("Red", 60)], seed=99)
    offline = timeline(model, spec, video, choose_decoder("pyav"))
    rate, _ = stream_frames(str(video))
    live = LiveTimeline(model, spec, rate)
    shown = play(live, str(video))
    line = live.timeline()
    assert line.starts == offline.starts and line.duration == pytest.approx(offline.duration)
    torch.testing.assert_close(line.probs, offline.probs, atol=1e-5, rtol=1e-4)
    shortest = offline.default_min_segment()
    assert live.segments() == offline.segments(shortest)
    assert [s.label for s in live.segments()] == ["Red", "Blue", "Green", "Red"]
    changes = [label for k, label in enumerate(shown) if k == 0 or label != shown[k - 1]]
    assert changes == ["Red", "Blue", "Green", "Red"]


def test_frames_hold_on_the_grid_until_the_next_one(colours):
    """Frames at 10 fps on a 25 fps grid: grid frame n is the frame on screen at (n + 0.5) / 25 s."""
    model, spec = colours
    live = LiveTimeline(model, spec, 25.0)
    for k in range(20):  # frame k shown from k / 10 + 0.01 s, its pixels = k
        live.push(k / 10 + 0.01, torch.full((3, 48, 64), k, dtype=torch.uint8))
    expected = [max(0, int(((n + 0.5) / 25 - 0.01) * 10)) for n in range(live.filled)]
    assert [int(live.grid[n][0, 0, 0]) for n in range(live.filled)] == expected
    assert live.filled == 48  # every grid time before 1.91 s, when the last frame began
    live.end()  # the last frame stays one grid frame's time: until 1.95 s
    assert live.filled == 49 and int(live.grid[48][0, 0, 0]) == 19


def test_memory_stays_flat_and_a_slow_scorer_stays_current(colours, tmp_path):
    """Over 60 s of frames only the frames windows still need are kept; `newest_only` scores the newest ready
    window and counts the ones it skipped; the history kept is bounded."""
    model, spec = colours
    live = LiveTimeline(model, spec, 25.0, history_s=10.0)
    frame = torch.zeros((3, 48, 64), dtype=torch.uint8)
    window_frames = spec.preprocess.num_frames * spec.preprocess.sample_rate
    most = 0
    for n in range(60 * 25):
        live.push(n / 25, frame)
        if n % 25 == 0:  # a scorer that gets a turn once a second
            live.score(newest_only=True)
        most = max(most, len(live.grid))
    assert most <= window_frames + 26
    assert live.skipped > 0 and len(live.starts) <= 10 / live.stride + 2
    assert live.starts[-1] > 58 - live.stride * 4  # current: within a few windows of the end


def test_a_stream_that_does_not_open_is_one_line(tmp_path):
    with pytest.raises(UserError) as err:
        stream_frames(str(tmp_path / "missing.mp4"))
    assert str(err.value).startswith(f"could not open the stream {tmp_path / 'missing.mp4'}") and "\n" not in str(err.value)
    not_video = tmp_path / "notes.txt"
    not_video.write_text("not a video")
    with pytest.raises(UserError, match="could not open the stream"):
        stream_frames(str(not_video))


def test_stream_frames_reads_what_the_decoder_reads(tmp_path):
    """Every frame of an H.264 file through stream_frames equals decode_pyav's frame at its index."""
    video = videos.write(tmp_path / "clip.mp4", "h264", n=30)
    rate, frames = stream_frames(str(video))
    streamed = list(frames)
    assert rate == 25 and [round(at * 25) for at, _ in streamed] == list(range(30))
    decoded = choose_decoder("pyav").decode(video, list(range(30)), 25.0)
    assert torch.equal(torch.stack([f for _, f in streamed]), decoded)


def test_a_stream_url_is_classified_as_it_plays(colours, tmp_path):
    """A colour video behind a local HTTP server, read at its playing speed through the page's handler: the
    lines it yields end with the last scene's label and say the stream ended."""
    from http_files import serve_folder

    from video_classifier.serve.live_page import LiveSources
    from video_classifier.serve.stream_targets import StreamTargets

    model, spec = colours
    write_colours(tmp_path / "scenes.avi", [("Blue", 40), ("Green", 45)], seed=5)  # 3.4 s
    sources = LiveSources(model, spec, StreamTargets(allow_private=True))  # a page on loopback
    with serve_folder(tmp_path) as server:
        began = time.monotonic()
        states = list(sources.play_url("session", f"{server.url}/scenes.avi", update_every=0.2))
    assert time.monotonic() - began >= 3.0  # played at its own speed, not as fast as it decodes
    line, labels = states[-1]
    assert line.startswith("scenes.avi: Green since ") and line.endswith("the stream ended"), line
    assert list(labels) == ["Green"]
    assert any(state[1] and list(state[1]) == ["Blue"] for state in states[:-1])  # Blue while Blue played


@pytest.mark.parametrize("url", ["", "/etc/passwd", "file:///etc/passwd", "ftp://example.com/v.mp4", "http://"])
def test_a_stream_url_the_page_does_not_read_is_one_line(colours, url):
    from video_classifier.serve.live_page import LiveSources

    ((line, labels),) = list(LiveSources(*colours).play_url("session", url))
    assert line.startswith("error: stream URL ") and "rtsp://" in line and "\n" not in line and labels == {}


def test_camera_frames_timed_as_they_arrive_give_the_label(colours):
    """Red frames handed to the camera handler at 12.5 fps as a browser would: after two windows' worth the
    session's scorer thread has labelled them Red; a second page's session is its own."""
    from video_classifier.serve.live_page import LiveSources

    sources = LiveSources(*colours)
    assert sources.camera_frame("page", None)[0].startswith("Camera off")
    red = np.clip(np.array(COLOURS["Red"]) + np.random.default_rng(0).integers(-25, 26, (48, 64, 3)), 0, 255)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line, labels = sources.camera_frame("page", red.astype(np.uint8))
        if labels:
            break
        time.sleep(0.08)
    assert line.startswith("camera: Red since ") and list(labels) == ["Red"], line
    assert sources.get("other") is None
    sources.stop("page")
    assert sources.get("page") is None
