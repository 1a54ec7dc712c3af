"""Real videos no one here made (../shared/realworld/videos, or the folder REALWORLD_VIDEOS names: phone
recordings, 10-bit, HEVC, AV1, VP9 with alpha, two video streams, no duration, a corrupted file): each is
checked, and read alike by both decoders. Where the folder is missing these are skipped, and under CI the
run fails (conftest's `realworld` need)."""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import REALWORLD_VIDEOS as VIDEOS
from conftest import REPO
from references import ffmpeg_frames

from video_classifier.data.decoding import decode_pyav, rgb24, torchcodec_problem
from video_classifier.data.manifest import probe_video
from video_classifier.data.preprocessing import clip_frame_indices, exact_fps, spread_clip_starts
from video_classifier.data.user_videos import check_video
from video_classifier.model.modeling import load_trained

sys.path.insert(0, str(REPO / "bench"))
import realworld  # noqa: E402

REJECTED = {"decord__corrupted.mp4"}  # made corrupt on purpose (decord's test fixture)
# Of 255 per pixel, averaged over a frame: both decoders convert to RGB as FFmpeg's command line does
# (decoding.rgb24), so every file, 10-bit ones included, gives the same pixels on both (measured 0).
PIXEL_TOLERANCE = 0.0
SCORE_TOLERANCE = 0.0  # the same pixels through the same model

pytestmark = pytest.mark.realworld


def videos() -> list[Path]:
    return sorted(p for p in VIDEOS.iterdir() if p.suffix != ".md") if VIDEOS.is_dir() else []


@pytest.mark.parametrize("path", videos(), ids=lambda p: p.name)
def test_the_check_passes_what_plays_and_rejects_what_does_not(path):
    if path.name in REJECTED:
        with pytest.raises(ValueError, match="does not decode"):
            check_video(str(path))
        return
    frames, fps, seconds = check_video(str(path))
    assert frames >= 3 and fps > 0 and seconds > 0
    assert (frames, fps) == probe_video(path)[:2]  # the manifest's counts are the header's where all decodes


@pytest.mark.torchcodec  # FFmpeg's command line needs the OS's FFmpeg libraries, as torchcodec does
@pytest.mark.ffmpeg
@pytest.mark.parametrize("path", [p for p in videos() if p.name not in REJECTED], ids=lambda p: p.name)
def test_pyav_converts_to_rgb_as_ffmpegs_command_line(path):
    """PyAV's first frame is what `ffmpeg -i FILE -frames:v 1 -pix_fmt rgb24` writes, byte for byte: 10-bit
    (whose chroma PyAV's own to_ndarray filters otherwise), 4:4:4, full range and BT.709 alike."""
    with av.open(str(path)) as container:
        first = rgb24(next(container.decode(container.streams.video[0])))  # the stream ffmpeg's 0:v:0 reads
    assert np.array_equal(first, ffmpeg_frames(path, count=1)[0])


def test_one_clock_per_video_on_pyav():
    """Without FFmpeg's libraries too: the phone recording (header rate 90000, average 10.5 fps) gives a new
    frame at each position; the file with two video streams is read at its main stream's size; the browser
    recording without a duration is measured from its packets."""
    frames, fps, seconds = probe_video(VIDEOS / "moviepy__fire2.mp4")
    assert (frames, round(fps, 2)) == (25, 10.51)
    clip = decode_pyav(VIDEOS / "moviepy__fire2.mp4", [0, 3, 6, 9, 12, 15, 18, 21], fps)
    assert len({frame.numpy().tobytes() for frame in clip}) == 8
    assert tuple(decode_pyav(VIDEOS / "torchcodec__nasa_13013.mp4", [0]).shape) == (1, 3, 270, 480)
    frames, fps, seconds = probe_video(VIDEOS / "moviepy__no_duration.webm")
    assert frames == 74 and round(fps, 3) == 14.985 and seconds == pytest.approx(4.938, abs=0.05)
    last = clip_frame_indices(*[spread_clip_starts(seconds, 1, 3)[-1] + k for k in (0, 1)], exact_fps(fps), frames, 4)
    assert decode_pyav(VIDEOS / "moviepy__no_duration.webm", last, fps).shape[0] == 4


@pytest.mark.torchcodec
@pytest.mark.skipif(torchcodec_problem() is not None, reason="torchcodec does not load here")
def test_both_decoders_read_every_real_video_alike(trained):
    """Same frames (frame k of one decoder is the nearest to frame k of the other, in every clip), as many
    distinct frames, pixels and scores within the tolerances, and the same top-1 wherever the top two
    classes are further apart than the scores can move."""
    _, out, _ = trained
    model, spec = load_trained(str(out))
    readings = [realworld.read(path, model, spec, clips=3) for path in videos()]
    print("\n" + realworld.table(readings))
    for r in readings:
        assert bool(r.rejected) == (r.video in REJECTED), r
        if r.rejected:
            continue
        assert r.same_frames and r.distinct[0] == r.distinct[1], r
        assert r.pixel_diff <= PIXEL_TOLERANCE and r.score_diff <= SCORE_TOLERANCE, r
        assert r.top1[0] == r.top1[1] or r.margin <= 2 * r.score_diff, r
