"""data.sampling: whole_video: a clip is num_frames spread over the whole video, the frames transformers'
video processors sample (VideoPrism's processor, the stock pipeline), kept in the saved model's config so
that inference samples the same way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main, tiny_config_dict, write_config
from transformers.video_utils import VideoMetadata, default_sample_indices_fn

from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError
from video_classifier.data.decoding import torchcodec_problem
from video_classifier.data.manifest import load_prepared
from video_classifier.data.preprocessing import PreprocessSpec

SPEC = dict(num_frames=4, sample_rate=2, resize_shortest_edge=32, crop_size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3)


@pytest.mark.parametrize("total", [4, 7, 30, 31, 97, 250])
def test_whole_video_frames_are_the_processors(total):
    ours = PreprocessSpec(**SPEC, whole_video=True).frame_indices(None, None, 25.0, total)
    theirs = default_sample_indices_fn(VideoMetadata(total_num_frames=total, fps=25.0), num_frames=4)
    assert ours == list(np.asarray(theirs))
    assert PreprocessSpec(**SPEC).frame_indices(0, 8 / 25, 25.0, total) != ours or total <= 8


def test_whole_video_needs_one_clip(tmp_path):
    path = write_config(tmp_path / "c.yaml", {"data": {"sampling": "whole_video"}})
    with pytest.raises(UserError, match="set eval.num_clips: 1"):
        load_config(path)


@pytest.fixture(scope="module")
def whole_video_run(tiny_workspace, tmp_path_factory):
    root = tmp_path_factory.mktemp("whole")
    data = tiny_config_dict(root)
    data["data"].update(root=str(tiny_workspace / "data"), sampling="whole_video")
    data["train"].update(epochs=1)
    data["eval"] = {"num_clips": 1, "num_crops": 1}
    config_path = write_config(root / "config.yaml", data)
    result = run_main("train.py", "--config", str(config_path))
    assert result.returncode == 0, result.stderr[-3000:]
    return config_path, Path(data["train"]["output_dir"]), tiny_workspace / "data", result.stdout


def test_a_whole_video_run_keeps_its_sampling(whole_video_run):
    """The run says how it samples, scores one clip per test video, and its config.json says whole_video."""
    _, out, data_root, stdout = whole_video_run
    assert "frames spread over each whole video (data.sampling: whole_video)" in stdout
    assert json.loads((out / "config.json").read_text())["clip_sampling"] == "whole_video"
    test = [r for r in load_prepared(data_root)[1] if r.split == "test"]
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    assert metrics["videos"] == len(test) and metrics["clips"] == len(test)


@pytest.mark.torchcodec
@pytest.mark.skipif(torchcodec_problem() is not None, reason="transformers' pipeline decodes with torchcodec")
def test_infer_on_one_view_gives_the_stock_pipelines_scores(whole_video_run):
    """infer.py --clips 1 --crops 1 on the whole-video model samples the stock pipeline's frames: the
    same scores for every test video, 1e-5 (sampling windows instead, the same model is 6e-4 to 2e-3 off)."""
    from transformers import pipeline

    config_path, out, data_root, _ = whole_video_run
    test = sorted(str(data_root / r.path) for r in load_prepared(data_root)[1] if r.split == "test")
    result = run_main("infer.py", "--config", str(config_path), "--model", str(out), "--clips", "1", "--crops", "1",
                      "--json", "--top-k", "99", *test)
    assert result.returncode == 0, result.stderr[-2000:]
    classify = pipeline("video-classification", model=str(out))
    predictions = json.loads(result.stdout)
    assert test and len(predictions) == len(test)
    for video, predicted in zip(test, predictions, strict=True):
        piped = {r["label"]: r["score"] for r in classify(video, top_k=99)}
        ours = dict(zip(predicted["labels"], predicted["scores"], strict=True))
        assert ours.keys() == piped.keys()
        assert max(abs(ours[k] - piped[k]) for k in ours) < 1e-5, video
