"""Videos damaged after prepare ran never kill a run: training replaces their clips, evaluation leaves
them out, metrics.json says which; only much unreadable data stops a run, with one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import tiny_config_dict, write_config

import train as train_script
from video_classifier.data.manifest import load_prepared
from video_classifier.data.preprocessing import ClipTransform


def damaged_copy(tiny_workspace: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The prepared tiny set, copied; one training video emptied, one test video cut to a third."""
    data = tmp_path / "data"
    shutil.copytree(tiny_workspace / "data", data)
    _, records = load_prepared(data)
    train = next(r.path for r in records if r.split == "train")
    test = next(r.path for r in records if r.split == "test")
    (data / train).write_bytes(b"")
    raw = (data / test).read_bytes()
    (data / test).write_bytes(raw[: len(raw) // 3])  # header intact, most frames gone
    return data, {"train": train, "test": test}


def config_for(data: Path, tmp_path: Path) -> Path:
    config = tiny_config_dict(tmp_path)
    config["data"]["root"] = str(data)
    config["eval"] = {"num_clips": 3, "num_crops": 1}
    return write_config(tmp_path / "config.yaml", config)


def test_training_completes_on_damaged_videos_and_reports_them(tiny_workspace, tmp_path, capsys):
    data, damaged = damaged_copy(tiny_workspace, tmp_path)
    train_script.main(["--config", str(config_for(data, tmp_path))])
    out = tmp_path / "run"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["videos_failing"] == [damaged["train"]]
    assert metrics["train"]["clips_replaced"] >= 1
    assert metrics["test"]["videos_left_out"] == [damaged["test"]] and metrics["test"]["videos"] == 7
    assert metrics["val"]["videos_left_out"] == [] and metrics["val"]["videos"] == 8
    assert metrics["test"]["clips_left_out"] >= 1
    err = capsys.readouterr().err
    assert err.count(f"warning: cannot decode {damaged['train']}") >= 1
    assert f"warning: cannot decode {damaged['test']}" in err
    rows = (out / "decode_failures.csv").read_text().splitlines()
    assert rows[0] == "split,video,reason" and any(r.startswith(f"train,{damaged['train']},") for r in rows)


def test_much_unreadable_data_stops_the_run_with_one_line(tiny_workspace, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_workspace / "data", data)
    _, records = load_prepared(data)
    for record in [r for r in records if r.split == "train"][::2]:  # half the training videos
        (data / record.path).write_bytes(b"not a video")
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(["--config", str(config_for(data, tmp_path))])
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "training videos do not decode (listed in" in lines[0]


def test_a_bug_outside_decoding_stops_the_run_with_its_own_message(tiny_workspace, tmp_path, monkeypatch, capsys):
    """Only a video that does not decode is skipped: a transform that raises (here RuntimeError, the type
    decoders raise too) ends the run with its own message, and no video is blamed for it."""
    def broken(self, video):
        raise RuntimeError("a bug in a transform")

    monkeypatch.setattr(ClipTransform, "frames", broken)
    with pytest.raises(RuntimeError, match="a bug in a transform"):
        train_script.main(["--config", str(config_for(tiny_workspace / "data", tmp_path))])
    assert "cannot decode" not in capsys.readouterr().err
    assert not (tmp_path / "run" / "decode_failures.csv").exists()

