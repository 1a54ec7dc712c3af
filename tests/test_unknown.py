""""None of these": engine/open_set.py's scores and threshold against worked examples and scikit-learn, the
threshold training keeps on val, and infer.unknown answering `unknown` on a video of a class held out of
training, in infer.py and in the timeline (where unknown is a state the smoother keeps like the classes)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config_dict, write_config
from videos import write_colours

from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError
from video_classifier.engine.open_set import MARGIN, accept_threshold, auroc, energy, max_probability, rejected_at
from video_classifier.model import unknown
from video_classifier.serve.timeline import Timeline

CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"


def test_the_threshold_accepts_the_stated_share_of_known_scores():
    scores = np.arange(1, 21) / 20  # 0.05 ... 1.0, 20 scores
    t = accept_threshold(scores, 0.95)  # 19 of 20 must pass: just under the 2nd lowest, 0.10
    assert t == pytest.approx(0.10 - MARGIN)
    assert accept_threshold(scores, 1.0) == pytest.approx(0.05 - MARGIN)  # all pass
    assert accept_threshold(scores, 0.5) == pytest.approx(0.55 - MARGIN)  # 10 of 20 at or above
    assert accept_threshold([0.3, 0.3004, 0.9], 0.6) == pytest.approx(0.3002)  # half-way to a nearer lower score
    generator = np.random.default_rng(0)
    for accept in (0.8, 0.9, 0.95, 0.99):
        known = generator.random(137)
        t = accept_threshold(known, accept)
        assert (known >= t).mean() >= accept  # at least the share asked for
        k = int(np.floor((1 - accept) * 137 + 1e-9))
        assert (known < t).sum() == k  # exactly the k lowest below it: none more is rejected


def test_auroc_and_rejection_against_their_definitions():
    known, unknown_scores = np.array([0.9, 0.8, 0.7, 0.4]), np.array([0.5, 0.3, 0.2])
    # pairs (known, unknown) ordered right: every pair but (0.4, 0.5): 11 of 12
    assert auroc(known, unknown_scores) == pytest.approx(11 / 12)
    # 95% of 4 known: floor(0.05 x 4) = 0 below, threshold just under 0.4: of the unknown, 0.3 and 0.2 are below
    assert rejected_at(known, unknown_scores, 0.95) == pytest.approx(2 / 3)


def test_the_scores_of_a_video():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])  # one video, two views
    probs = torch.softmax(logits, -1).mean(1)
    assert float(max_probability(probs)[0]) == pytest.approx((math.e**2 / (math.e**2 + 2) + 1 / 3) / 2)
    assert float(energy(logits)[0]) == pytest.approx((math.log(math.e**2 + 2) + math.log(3)) / 2)


def test_which_threshold_infer_unknown_asks_for():
    class Saved:
        unknown_threshold = 0.42

    assert unknown.unknown_threshold(Saved(), "auto", False) == 0.42
    assert unknown.unknown_threshold(Saved(), "off", False) is None
    assert unknown.unknown_threshold(Saved(), 0.3, False) == 0.3
    assert unknown.unknown_threshold(object(), "auto", False) is None  # kept none: every answer a class
    assert unknown.unknown_threshold(Saved(), "auto", True) is None  # multi-label: "no label" instead
    with pytest.raises(UserError, match="single-label"):
        unknown.unknown_threshold(Saved(), 0.3, True)
    assert load_config(CONFIG, ["infer.unknown=off"]).infer.unknown == "off"
    with pytest.raises(UserError, match="infer.unknown"):
        load_config(CONFIG, ["infer.unknown=1.5"])


def test_the_timeline_keeps_unknown_as_a_state():
    # 12 windows: A (0.9) for 4, nothing sure (0.4 / 0.35 / 0.25) for 4, B (0.9) for 4; threshold 0.6
    sure_a, unsure, sure_b = [0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.05, 0.9, 0.05]
    probs = torch.tensor([sure_a] * 4 + [unsure] * 4 + [sure_b] * 4)
    line = Timeline("v", 12.0, 1.0, 1.0, [float(k) for k in range(12)], probs, ["A", "B", "C"], 25.0)
    assert [s.label for s in line.segments(0.0, 2.5)] == ["A", "B"]  # forced into a class without it
    line.unknown = 0.6
    assert [s.label for s in line.segments(0.0, 2.5)] == ["A", unknown.UNKNOWN, "B"]
    # one unsure window among sure ones is smoothed away, as a one-window class would be
    blip = torch.tensor([sure_a] * 5 + [unsure] + [sure_a] * 6)
    line = Timeline("v", 12.0, 1.0, 1.0, [float(k) for k in range(12)], blip, ["A", "B", "C"], 25.0, unknown=0.6)
    assert [s.label for s in line.segments(0.0, 2.5)] == ["A"]
    assert [s.label for s in line.segments(0.0, 0.0)] == ["A", unknown.UNKNOWN, "A"]


@pytest.fixture(scope="module")
def two_colours(tmp_path_factory):
    """A tiny VideoMAE trained on flat Red and Green videos only (Blue held out), with infer.unknown: auto."""
    import prepare_data
    import train as train_script

    root = tmp_path_factory.mktemp("two-colours")
    for label in ("Red", "Green"):
        for i in range(10):
            write_colours(root / "videos" / label / f"v_{label}_g{i:02d}_c01.avi", [(label, 30)], seed=i)
    write_colours(root / "held_out" / "v_Blue_g00_c01.avi", [("Blue", 30)], seed=0)
    config = tiny_config_dict(root)
    config["data"].update(source="folder", videos=str(root / "videos"), split_fractions=[0.6, 0.2, 0.2])
    config["train"].update(epochs=8, max_stride=None)
    config["eval"] = {"num_clips": 1, "num_crops": 1}
    config["infer"] = {"unknown": "auto"}
    path = write_config(root / "config.yaml", config)
    prepare_data.main(["--config", str(path)])
    train_script.main(["--config", str(path)])
    return path, Path(config["train"]["output_dir"]), root


def test_training_keeps_the_threshold_chosen_on_val(two_colours, tmp_path):
    import eval as eval_script

    path, out, _ = two_colours
    saved = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert saved[unknown.THRESHOLD] == pytest.approx(metrics["val"]["unknown_threshold"])
    assert 0 < saved[unknown.THRESHOLD] <= 1
    assert saved[unknown.ACCEPT] == 0.95
    assert 0 <= metrics["test"]["answered_unknown"] <= 1
    # the saved (temperature-folded) model, scored again on val by eval.py: at most 5% of it below the threshold
    eval_script.main(["--config", str(path), "--model", str(out), "--split", "val", "--out", str(tmp_path),
                      "--set", "infer.precision=fp32"])  # bf16 moves the scores: the lowest val video may drop
    again = json.loads(next(tmp_path.glob("eval_val*.json")).read_text())["val"]
    assert again["unknown_threshold_used"] == saved[unknown.THRESHOLD] and again["answered_unknown"] <= 0.05


def test_infer_answers_unknown_on_a_held_out_class(two_colours, capsys):
    import infer

    path, out, root = two_colours
    infer.main(["--config", str(path), "--model", str(out), "--json",
                str(root / "held_out"), str(root / "videos" / "Red" / "v_Red_g00_c01.avi")])
    blue, red = json.loads(capsys.readouterr().out)
    assert blue["unknown"] is not None and red["unknown"] is None and red["labels"][0] == "Red"
    infer.main(["--config", str(path), "--model", str(out), "--set", "infer.unknown=off", str(root / "held_out")])
    assert unknown.UNKNOWN not in capsys.readouterr().out


def test_the_live_label_goes_to_unknown_while_a_held_out_class_shows(two_colours):
    from video_classifier.data.decoding import stream_frames
    from video_classifier.serve.inference import load_model
    from video_classifier.serve.live import LiveTimeline

    path, out, root = two_colours
    video = root / "live" / "red-blue-red.avi"
    write_colours(video, [("Red", 75), ("Blue", 125), ("Red", 75)], seed=3)  # 3 s, 5 s, 3 s
    config = load_config(path, ["infer.precision=fp32"])
    model, spec = load_model(str(out), config)
    live = LiveTimeline(model, spec, 25.0, video.name)
    _, frames = stream_frames(str(video))
    for at, frame in frames:
        live.push(at, frame)
        live.score()
    live.end()
    live.score()
    segments = live.segments()
    assert [s.label for s in segments] == ["Red", unknown.UNKNOWN, "Red"]
    middle, near = segments[1], 2 * float(live.length)  # the cuts within two windows of the colour changes
    assert abs(middle.start - 3.0) < near and abs(middle.end - 8.0) < near


def test_the_page_answers_unknown_on_a_held_out_class(two_colours, tmp_path):
    from video_classifier.serve.web import answer, load_demo

    path, out, root = two_colours
    demo = load_demo(str(out), load_config(path, ["infer.precision=fp32"]))
    got = answer(demo, str(root / "held_out" / "v_Blue_g00_c01.avi"), tmp_path)
    assert f": {unknown.UNKNOWN} (no class reaches" in got.status
    assert f": {unknown.UNKNOWN}" not in answer(demo, str(root / "videos" / "Red" / "v_Red_g00_c01.avi"), tmp_path).status
