"""infer.py --timeline on a long video whose class changes at known times: segment boundaries within one
stride of the truth. The model is a tiny one trained here on flat-colour videos (Red, Green, Blue), which
it learns in a few dozen steps, so the test is about the windows and segments, not about learning motion."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from videos import write_colours

import infer as infer_script
from video_classifier.serve.timeline import SWITCH_COST, Timeline, label_path, window_starts


def test_segments_land_within_one_stride_of_the_truth(colour_model, tmp_path, capsys):
    config, model = colour_model
    assert json.loads((model / "metrics.json").read_text())["test"]["top1"] == 1.0  # it knows the colours
    video = tmp_path / "long.avi"
    write_colours(video, [("Red", 100), ("Blue", 90), ("Green", 110), ("Red", 60)], seed=99)  # 0-4-7.6-12-14.4 s
    truth = [4.0, 7.6, 12.0]
    capsys.readouterr()
    infer_script.main(["--config", str(config), "--model", str(model), "--timeline", "--json", "--out",
                       str(tmp_path / "out"), str(video)])
    (result,) = json.loads(capsys.readouterr().out)
    window = 4 * 2 / 25  # 4 frames x stride 2 at 25 fps
    assert result["window"] == pytest.approx(window) and result["stride"] == pytest.approx(window / 2)
    assert result["min_segment"] == pytest.approx(2 * window, abs=1e-3)  # the default: two windows
    assert result["windows"] == len(window_starts(14.4, window, window / 2))
    segments = result["segments"]
    assert [s["label"] for s in segments] == ["Red", "Blue", "Green", "Red"]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == pytest.approx(14.4)
    for found, true in zip([s["start"] for s in segments[1:]], truth):
        assert abs(found - true) <= result["stride"], (found, true)
    files = {k: Path(v) for k, v in result["files"].items()}
    assert all(p.is_file() for p in files.values())
    saved = json.loads(files["json"].read_text())
    assert saved["segments"] == segments and len(saved["windows"]) == result["windows"]
    rows = list(csv.DictReader(open(files["csv"])))
    assert len(rows) == result["windows"] * 3 and rows[0].keys() == {"start", "end", "rank", "label", "score"}


def test_by_default_a_scene_shorter_than_two_windows_is_merged_and_with_0_it_is_kept(colour_model, tmp_path, capsys):
    """A 0.24 s insert of another colour (3/4 of a window) in a red video: its own segment at --min-segment 0,
    merged into the red around it at the default (two windows, 0.64 s); --switch-cost 0 both times, so the
    difference is the shortest segment's alone."""
    config, model = colour_model
    video = tmp_path / "insert.avi"
    write_colours(video, [("Red", 50), ("Green", 6), ("Red", 50)], seed=7)
    found = {}
    for option in ([], ["--min-segment", "0"]):
        infer_script.main(["--config", str(config), "--model", str(model), "--timeline", "--json", "--switch-cost",
                           "0", *option, "--out", str(tmp_path / "out"), str(video)])
        (result,) = json.loads(capsys.readouterr().out)
        found[tuple(option)] = [s["label"] for s in result["segments"]]
    assert found[("--min-segment", "0")] == ["Red", "Green", "Red"]
    assert found[()] == ["Red"]


def test_short_stray_windows_merge_into_their_neighbours():
    """A run of windows shorter than --min-segment takes its longer neighbour's label."""
    starts = window_starts(10.0, 1.0, 0.5)
    top = [0 if s + 0.5 < 4 else 1 for s in starts]
    top[15] = 0  # one stray window inside the second class
    timeline = Timeline("v.avi", 10.0, 1.0, 0.5, starts, torch.nn.functional.one_hot(torch.tensor(top), 2).float(),
                        ["A", "B"], 25.0)
    assert [(s.label, s.start, s.end) for s in timeline.segments(0.0)] == [
        ("A", 0.0, 3.75), ("B", 3.75, 7.75), ("A", 7.75, 8.25), ("B", 8.25, 10.0)]
    assert [(s.label, s.start, s.end) for s in timeline.segments(1.0)] == [("A", 0.0, 3.75), ("B", 3.75, 10.0)]


def test_label_path_is_the_best_path_under_the_switch_cost():
    """Viterbi against every path of 6 windows x 3 classes, at several costs; 0 gives each window's top."""
    generator = torch.Generator().manual_seed(0)
    for trial in range(20):
        probs = torch.rand(6, 3, generator=generator).pow(3).softmax(-1) if trial % 2 else \
            torch.rand(6, 3, generator=generator).softmax(-1)
        log_p = probs.double().log()
        for cost in (0.0, 0.3, 1.0, 5.0):
            def value(path, log_p=log_p, cost=cost):
                return sum(log_p[t, c].item() for t, c in enumerate(path)) - cost * sum(
                    a != b for a, b in zip(path, path[1:]))
            best = max(value(p) for p in itertools.product(range(3), repeat=6))
            assert value(label_path(probs, cost)) == pytest.approx(best, abs=1e-9)
        assert label_path(probs, 0.0) == probs.argmax(-1).tolist()


def test_hesitant_windows_do_not_cut_a_scene_but_confident_ones_do():
    starts = window_starts(10.0, 1.0, 0.5)
    a, b = torch.tensor([0.9, 0.1]), torch.tensor([0.1, 0.9])
    hesitant = torch.stack([a] * 8 + [torch.tensor([0.35, 0.65])] * 2 + [a] * 3 + [b] * 6)
    timeline = Timeline("v.avi", 10.0, 1.0, 0.5, starts, hesitant, ["A", "B"], 25.0)
    assert [s.label for s in timeline.segments(0.0, 0.0)] == ["A", "B", "A", "B"]
    assert [(s.label, s.start, s.end) for s in timeline.segments(0.0, SWITCH_COST)] == [
        ("A", 0.0, 6.75), ("B", 6.75, 10.0)]
    confident = hesitant.clone()
    confident[8:10] = torch.tensor([0.02, 0.98])  # two windows sure of B: a short scene of its own
    assert [s.label for s in Timeline("v.avi", 10.0, 1.0, 0.5, starts, confident, ["A", "B"], 25.0).segments(
        0.0, SWITCH_COST)] == ["A", "B", "A", "B"]


def test_cuts_are_placed_where_the_windows_mix_of_two_classes_says():
    """Windows whose probabilities follow their share of each class put the cut at its true time, between
    window centres; a window that saw neither class (a third one's look) does not move it."""
    starts = window_starts(8.0, 0.64, 0.32)
    cut = 3.25  # half-way points between window centres fall at 3.04 and 3.36
    share = torch.tensor([min(max((cut - s) / 0.64, 0.0), 1.0) for s in starts])  # of class A, per window
    probs = torch.stack([share, 1 - share, torch.zeros_like(share)], 1)
    timeline = Timeline("v.avi", 8.0, 0.64, 0.32, starts, probs, ["A", "B", "C"], 25.0)
    (a, b) = timeline.segments(0.0)
    assert (a.label, b.label) == ("A", "B") and abs(a.end - cut) <= 0.01 and b.start == a.end
    halfway = timeline.segments(0.0, place_cuts=False)[0].end
    assert abs(halfway - cut) > 0.05  # half-way between centres is coarser
    straddling = [i for i, s in enumerate(starts) if s < cut < s + 0.64]
    probs[straddling[0]] = torch.tensor([0.2, 0.2, 0.6])  # a mix that looks like C
    placed = Timeline("v.avi", 8.0, 0.64, 0.32, starts, probs, ["A", "B", "C"], 25.0).segments(0.0, SWITCH_COST)
    assert [s.label for s in placed] == ["A", "B"] and abs(placed[0].end - cut) <= 0.02


def test_no_segment_is_shorter_than_one_frame():
    """A one-window scene that window says is barely C: its two cuts are placed within a frame of each
    other (at times the same). At 25 fps no segment is shorter than a frame: the cuts meet and the A
    either side becomes one segment; without the floor (fps 1e9) the sliver is there."""
    starts = window_starts(8.0, 0.64, 0.32)
    slivers = 0
    for c in (0.505, 0.51, 0.515, 0.52, 0.55, 0.6):
        probs = torch.tensor([[1.0, 0.0, 0.0]]).repeat(len(starts), 1)
        probs[len(starts) // 2] = torch.tensor([1 - c, 0.0, c])
        unfloored = Timeline("v.avi", 8.0, 0.64, 0.32, starts, probs, ["A", "B", "C"], 1e9).segments(0.0, 0.0)
        slivers += any(s.end - s.start < 0.04 for s in unfloored)
        segments = Timeline("v.avi", 8.0, 0.64, 0.32, starts, probs, ["A", "B", "C"], 25.0).segments(0.0, 0.0)
        assert all(s.end - s.start >= 0.04 - 1e-3 for s in segments), (c, segments)
        assert segments[0].start == 0.0 and segments[-1].end == 8.0
        assert all(a.end == b.start and a.label != b.label for a, b in zip(segments, segments[1:])), segments
    assert slivers  # the case arises


# --- The smoother against its definitions, computed here by brute force ---

from fractions import Fraction  # noqa: E402

from video_classifier.serve.timeline import Segment, _at_least_one_frame  # noqa: E402


def test_window_starts_step_by_the_stride_while_a_window_fits():
    for duration, window, stride in ((10.0, 1.0, 0.5), (14.4, 0.32, 0.16), (0.5, 1.0, 0.5), (1.0, 1.0, 0.25),
                                     (7.3, 0.64, 0.32), (3.0, 0.9, 0.7)):
        d, w, s = (Fraction(str(x)) for x in (duration, window, stride))  # the decimals as written
        count = max(1, (d - w) // s + 1)
        assert window_starts(duration, window, stride) == [round(float(k * s), 6) for k in range(count)]
    assert window_starts(10.0, 1.0, 0.5)[-1] == 9.0 and len(window_starts(14.4, 0.32, 0.16)) == 89


def best_on_off_path(p: np.ndarray, t: float, cost: float) -> list[bool]:
    """Every on/off path tried: on scores log(p / t), off log((1 - p) / (1 - t)), minus `cost` per switch."""
    on, off = np.log(np.clip(p / t, 1e-12, None)), np.log(np.clip((1 - p) / (1 - t), 1e-12, None))

    def value(path):
        return sum(on[k] if s else off[k] for k, s in enumerate(path)) - cost * sum(a != b for a, b in zip(path, path[1:]))
    return list(max(itertools.product((False, True), repeat=len(p)), key=value))


def intervals_from_definition(timeline: Timeline, min_segment: float, cost: float) -> list[Segment]:
    centres = [s + timeline.window / 2 for s in timeline.starts]
    out = []
    for c, name in enumerate(timeline.labels):
        p = timeline.probs[:, c].double().numpy()
        path = best_on_off_path(p, timeline.thresholds[c], cost)
        for key, group in itertools.groupby(range(len(path)), key=path.__getitem__):
            run = list(group)
            if not key:
                continue
            start = 0.0 if run[0] == 0 else (centres[run[0] - 1] + centres[run[0]]) / 2
            end = timeline.duration if run[-1] == len(path) - 1 else (centres[run[-1]] + centres[run[-1] + 1]) / 2
            if end - start >= min_segment:
                out.append(Segment(round(start, 3), round(end, 3), name, round(float(p[run].mean()), 4)))
    return sorted(out, key=lambda s: (s.start, s.label))


def test_class_intervals_are_each_class_best_on_off_path():
    generator = torch.Generator().manual_seed(1)
    starts = window_starts(4.5, 1.0, 0.5)  # 8 windows
    for trial in range(8):
        probs = torch.rand(8, 3, generator=generator)
        thresholds = tuple(float(x) for x in torch.rand(3, generator=generator) * 0.6 + 0.2)
        timeline = Timeline("v.avi", 4.5, 1.0, 0.5, starts, probs, ["a", "b", "c"], 25.0, thresholds)
        for cost, min_segment in ((0.0, 0.0), (0.7, 0.0), (2.5, 0.0), (0.7, 1.2)):
            expected = intervals_from_definition(timeline, min_segment, cost)
            assert timeline.class_intervals(min_segment, cost) == expected, (trial, cost, min_segment)
            assert timeline.segments(min_segment, cost) == expected  # a multi-label timeline's segments


def test_a_score_at_its_threshold_is_on_in_the_timeline_too():
    """At switch cost 0 a window is on where p >= t, as MultiLabel.predicted says."""
    starts = window_starts(4.0, 1.0, 0.5)
    probs = torch.tensor([[0.2], [0.25], [0.25], [0.1], [0.1], [0.3], [0.1]])
    timeline = Timeline("v.avi", 4.0, 1.0, 0.5, starts, probs, ["a"], 25.0, (0.25,))
    assert timeline.class_intervals(0.0, 0.0) == [Segment(0.75, 1.75, "a", 0.25), Segment(2.75, 3.25, "a", 0.3)]


def test_a_segment_shorter_than_a_frame_is_absorbed():
    frame = 0.04
    # first: the next one starts where it started
    assert _at_least_one_frame([(0.0, 0.01, [0]), (0.01, 2.0, [1]), (2.0, 3.0, [2])], [0, 1, 2], frame) == [
        (0.0, 2.0, [1]), (2.0, 3.0, [2])]
    # last: the one before runs to its end
    assert _at_least_one_frame([(0.0, 2.99, [0]), (2.99, 3.0, [1])], [0, 1], frame) == [(0.0, 3.0, [0])]
    # in the middle: its neighbours meet half-way; with the same label they become one segment
    assert _at_least_one_frame([(0.0, 1.0, [0]), (1.0, 1.02, [1]), (1.02, 3.0, [2])], [0, 1, 2], frame) == [
        (0.0, 1.01, [0]), (1.01, 3.0, [2])]
    assert _at_least_one_frame([(0.0, 1.0, [0]), (1.0, 1.02, [1]), (1.02, 3.0, [2])], [0, 1, 0], frame) == [
        (0.0, 3.0, [0, 2])]
    # exactly one frame stays; a lone segment stays whatever its length
    pieces = [(0.0, 1.0, [0]), (1.0, 1.04, [1]), (1.04, 3.0, [2])]
    assert _at_least_one_frame(pieces, [0, 1, 2], frame) == pieces
    assert _at_least_one_frame([(0.0, 0.01, [0])], [0], frame) == [(0.0, 0.01, [0])]
    # two slivers in a row: the first splits at 1.005, which leaves the second 1.005-1.02, split at 1.0125
    assert _at_least_one_frame([(0.0, 1.0, [0]), (1.0, 1.01, [1]), (1.01, 1.02, [2]), (1.02, 2.0, [3])],
                               [0, 1, 2, 3], frame) == [(0.0, 1.0125, [0]), (1.0125, 2.0, [3])]


def cut_from_definition(timeline: Timeline, windows: list[int], a: int, b: int, low: float, high: float) -> float:
    """Every cut c on the 10 ms grid of [low, high]: the weighted squared error between each overlapping
    window's share of a, clip((c - s) / L, 0, 1), and its p_a / (p_a + p_b), weighted by p_a + p_b, over
    the windows with p_a + p_b >= 1/2; the middle of the best cuts."""
    grid = [k / 100 for k in range(math.ceil(low * 100), math.floor(high * 100) + 1)]
    if not grid:
        return (low + high) / 2
    errors = []
    for c in grid:
        error = 0.0
        for i in windows:
            s = timeline.starts[i]
            pa, pb = float(timeline.probs[i, a]), float(timeline.probs[i, b])
            if s + timeline.window > low and s < high and pa + pb >= 0.5:
                error += (pa + pb) * (pa / (pa + pb) - min(max((c - s) / timeline.window, 0.0), 1.0)) ** 2
        errors.append(error)
    best = min(errors)
    return float(np.mean([c for c, e in zip(grid, errors) if e <= best + 1e-9]))


def test_a_cut_is_placed_where_the_windows_shares_fit_best():
    generator = torch.Generator().manual_seed(2)
    starts = window_starts(6.0, 0.64, 0.32)
    for trial in range(10):
        probs = torch.rand(len(starts), 3, generator=generator).softmax(-1)
        timeline = Timeline("v.avi", 6.0, 0.64, 0.32, starts, probs, ["a", "b", "c"], 25.0)
        windows = list(range(4, 12))
        for low, high in ((1.5, 2.9), (2.0, 2.004), (2.3, 3.1)):
            assert timeline.place_cut(windows, 0, 1, low, high) == pytest.approx(
                cut_from_definition(timeline, windows, 0, 1, low, high), abs=1e-9), (trial, low, high)


def one_hot_timeline(top: list[int], classes: int = 3, duration: float | None = None) -> Timeline:
    """Windows of 1 s every 0.5 s, each sure of its label in `top`."""
    duration = duration or 0.5 * len(top) + 0.5
    probs = torch.nn.functional.one_hot(torch.tensor(top), classes).float()
    return Timeline("v.avi", duration, 1.0, 0.5, window_starts(duration, 1.0, 0.5), probs, list("ABC")[:classes],
                    25.0)


def test_a_short_stretch_takes_its_longer_neighbours_label():
    """Bounds half-way between window centres (cuts left there: place_cuts=False); a stretch shorter than
    min_segment joins the longer of its neighbours, the first or the last its only one."""
    def read(timeline, min_segment):
        return [(s.label, s.start, s.end) for s in timeline.segments(min_segment, 0.0, place_cuts=False)]
    # windows' centres at 0.5, 1.0, ...: a run's bounds are half-way to its neighbours' (0.25 s outside)
    assert read(one_hot_timeline([0] * 6 + [1] * 2 + [2] * 4), 0.0) == [
        ("A", 0.0, 3.25), ("B", 3.25, 4.25), ("C", 4.25, 6.5)]
    assert read(one_hot_timeline([0] * 6 + [1] * 2 + [2] * 4), 1.5) == [("A", 0.0, 4.25), ("C", 4.25, 6.5)]
    assert read(one_hot_timeline([0] * 3 + [1] * 2 + [2] * 8), 1.5) == [("A", 0.0, 1.75), ("C", 1.75, 7.0)]
    assert read(one_hot_timeline([1] * 2 + [0] * 6), 1.5) == [("A", 0.0, 4.5)]  # the first: into the second
    assert read(one_hot_timeline([0] * 6 + [1] * 2), 1.5) == [("A", 0.0, 4.5)]  # the last: into the one before
    assert read(one_hot_timeline([0] * 6 + [1] * 2), 1.0) == [("A", 0.0, 3.25), ("B", 3.25, 4.5)]  # = 1.25 s
    assert read(one_hot_timeline([0] * 3 + [1] * 2 + [0] * 3), 1.0) == [  # B is 1.0 s: kept
        ("A", 0.0, 1.75), ("B", 1.75, 2.75), ("A", 2.75, 4.5)]
    assert read(one_hot_timeline([0] * 3), 9.0) == [("A", 0.0, 2.0)]  # one stretch, however short
    # the defaults: no min_segment, SWITCH_COST
    assert one_hot_timeline([0] * 6 + [1] * 2 + [2] * 4).segments() == \
        one_hot_timeline([0] * 6 + [1] * 2 + [2] * 4).segments(0.0, SWITCH_COST)
    assert len(one_hot_timeline([0] * 6 + [1] * 2 + [2] * 4).segments()) == 3


def test_a_segments_score_is_its_labels_mean_probability():
    generator = torch.Generator().manual_seed(3)
    high = 0.6 + 0.3 * torch.rand(16, generator=generator)
    probs = torch.zeros(16, 2)
    probs[:8, 0], probs[8:, 1] = high[:8], high[8:]
    probs[:8, 1], probs[8:, 0] = 1 - high[:8], 1 - high[8:]
    timeline = Timeline("v.avi", 8.5, 1.0, 0.5, window_starts(8.5, 1.0, 0.5), probs, ["A", "B"], 25.0)
    a, b = timeline.segments(0.0, 0.0)
    assert (a.score, b.score) == (round(float(high[:8].mean()), 4), round(float(high[8:].mean()), 4))


def test_a_tie_at_the_threshold_does_not_pay_for_switches():
    """Ten windows exactly at the threshold between windows well below it: on by a hair each, never by
    enough to pay two switches."""
    p = torch.tensor([0.05] * 3 + [0.25] * 10 + [0.05] * 3).unsqueeze(1)
    timeline = Timeline("v.avi", 8.5, 1.0, 0.5, window_starts(8.5, 1.0, 0.5), p, ["a"], 25.0, (0.25,))
    assert timeline.class_intervals(0.0, SWITCH_COST) == []
    assert len(timeline.class_intervals(0.0, 0.0)) == 1 and timeline.class_intervals() == []


def test_class_intervals_round_to_milliseconds_and_keep_one_of_min_segment():
    starts = window_starts(3.0, 0.5, 0.1234)
    p = torch.tensor([0.1] * 5 + [0.9] * 8 + [0.1] * (len(starts) - 13)).unsqueeze(1)
    timeline = Timeline("v.avi", 3.0, 0.5, 0.1234, starts, p, ["a"], 25.0, (0.5,))
    (interval,) = timeline.class_intervals(0.0, 0.0)
    centres = [s + 0.25 for s in starts]
    assert (interval.start, interval.end) == (round((centres[4] + centres[5]) / 2, 3),
                                              round((centres[12] + centres[13]) / 2, 3))
    assert interval.start != (centres[4] + centres[5]) / 2  # 0.80 + 0.06: more decimals than kept
    exact = Timeline("v.avi", 4.5, 1.0, 0.5, window_starts(4.5, 1.0, 0.5),
                     torch.tensor([0.1, 0.1, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1]).unsqueeze(1), ["a"], 25.0, (0.5,))
    assert exact.class_intervals(1.0, 0.0) == [Segment(1.25, 2.25, "a", 0.9)]  # exactly 1.0 s: kept
    assert exact.class_intervals(1.01, 0.0) == []


def test_window_starts_keep_6_decimals():
    assert window_starts(2.0, 0.5, 1 / 3) == [0.0, 0.333333, 0.666667, 1.0, 1.333333]


@pytest.mark.filterwarnings("error")  # log(0) would warn (and give -inf)
def test_label_path_takes_probabilities_of_zero():
    probs = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert label_path(probs, SWITCH_COST) == [0, 0, 1, 1]


def test_exactly_one_frame_is_a_segment():
    frame = 0.25  # binary-exact: a piece of exactly one frame
    pieces = [(0.0, 1.0, [0]), (1.0, 1.25, [1]), (1.25, 3.0, [2])]
    assert _at_least_one_frame(pieces, [0, 1, 2], frame) == pieces
    assert _at_least_one_frame([(0.0, 1.0, [0]), (1.0, 1.125, [1]), (1.125, 3.0, [2])], [0, 1, 2], frame) == [
        (0.0, 1.0625, [0]), (1.0625, 3.0, [2])]


def test_a_sliver_between_two_of_one_label_joins_them_anywhere_in_the_video():
    pieces = [(0.0, 1.0, [0]), (1.0, 2.0, [1]), (2.0, 2.01, [2]), (2.01, 3.0, [3]), (3.0, 4.0, [4])]
    assert _at_least_one_frame(pieces, [0, 1, 2, 1, 0], 0.04) == [
        (0.0, 1.0, [0]), (1.0, 3.0, [1, 3]), (3.0, 4.0, [4])]


def test_a_cut_with_no_10ms_step_in_its_range_is_its_middle():
    starts = window_starts(4.0, 1.0, 0.5)
    timeline = Timeline("v.avi", 4.0, 1.0, 0.5, starts, torch.full((len(starts), 2), 0.5), ["A", "B"], 25.0)
    assert timeline.place_cut(list(range(len(starts))), 0, 1, 2.001, 2.009) == pytest.approx(2.005)


def test_a_window_with_half_its_probability_on_the_two_classes_counts():
    """p_a + p_b = 1/2 exactly (quarters are exact): such a window is one that saw them."""
    starts = window_starts(4.0, 1.0, 0.5)
    rows = [[1.0, 0, 0], [1.0, 0, 0], [0.75, 0.25, 0], [0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0, 1.0, 0], [0, 1.0, 0]]
    timeline = Timeline("v.avi", 4.0, 1.0, 0.5, starts, torch.tensor(rows), list("ABC"), 25.0)
    assert timeline.place_cut(list(range(7)), 0, 1, 0.5, 3.0) == pytest.approx(
        cut_from_definition(timeline, list(range(7)), 0, 1, 0.5, 3.0), abs=1e-9)
    without = Timeline("v.avi", 4.0, 1.0, 0.5, starts, torch.tensor([r if sum(r[:2]) != 0.5 else [0, 0, 1.0]
                                                                    for r in rows]), list("ABC"), 25.0)
    assert timeline.place_cut(list(range(7)), 0, 1, 0.5, 3.0) != without.place_cut(list(range(7)), 0, 1, 0.5, 3.0)
