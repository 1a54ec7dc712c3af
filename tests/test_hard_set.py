"""The harder set's property: the class's motion fills a third of each video, so one centre clip
often misses it while clips spread over the video find it (what each evaluation view can see)."""

from fractions import Fraction

from conftest import REPO

from video_classifier.core.config import load_config
from video_classifier.data.preprocessing import exact_fps, spread_clip_starts
from video_classifier.data.synthetic import motion_window, plan, render_with_window


def overlap(start: Fraction, length: Fraction, window: tuple[float, float]) -> float:
    """Seconds of [start, start + length) inside the motion window."""
    return max(0.0, min(float(start + length), window[1]) - max(float(start), window[0]))


def test_centre_clip_often_misses_the_motion_that_spread_clips_find():
    config = load_config(REPO / "configs" / "hard.yaml").data
    synthetic = config.synthetic
    clip = Fraction(8 * config.sample_rate) / exact_fps(synthetic.fps)  # the tiny model's 8 frames: 0.64 s
    videos = [s for s in plan(synthetic) if s.split == "test"][:32]
    centre_sees = spread_sees = 0
    for spec in videos:
        window = motion_window(spec, synthetic)
        seconds = round((window[1] - window[0]) / synthetic.motion_fraction * synthetic.fps) / synthetic.fps
        assert 6.0 - 0.04 <= seconds <= 8.0 + 0.04 and 0 <= window[0] and window[1] <= seconds + 1e-6
        # seeing the motion: at least half of a clip's span inside the window
        (centre,) = spread_clip_starts(seconds, clip, 1)
        centre_sees += overlap(centre, clip, window) >= float(clip) / 2
        spread_sees += any(overlap(s, clip, window) >= float(clip) / 2 for s in spread_clip_starts(seconds, clip, 5))
    assert centre_sees / len(videos) < 0.75  # a good share of videos: the centre clip shows a still camera
    assert spread_sees / len(videos) >= 0.95


def test_the_camera_is_still_outside_the_window():
    config = load_config(REPO / "configs" / "hard.yaml").data.synthetic
    quiet = config.__class__(**{**config.__dict__, "distractors": 0, "shake": 0.0, "flicker": 0.0,
                                "width": 64, "height": 48})
    spec = [s for s in plan(quiet) if s.split == "test"][0]
    frames, (start, end) = render_with_window(spec, quiet)
    fps = quiet.fps
    first, last = int(start * fps), int(end * fps)
    if first >= 2:
        assert (frames[0] == frames[first - 1]).all()  # still before
    assert not (frames[first + 1] == frames[last - 1]).all()  # moving inside
    if last + 2 < len(frames):
        assert (frames[last + 1] == frames[-1]).all()  # still after
