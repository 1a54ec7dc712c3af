"""Nothing of the user's is deleted: train.overwrite_output_dir clears only folders train.py marked,
and in them only what runs write."""

from __future__ import annotations

import pytest
from conftest import tiny_config_dict, write_config

import train as train_script
from video_classifier.core.errors import UserError
from video_classifier.core.run_folder import MARKER, clear_output_dir


def test_an_unmarked_folder_is_refused_and_left_as_it_was(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    (tmp_path / "config.json").write_text("{}")  # a name runs write, in a folder no run made
    with pytest.raises(UserError, match=f"output folder {tmp_path} was not made by train.py"):
        clear_output_dir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "thesis.tex"]


def test_a_marked_folder_loses_only_what_runs_write(tmp_path):
    for name in (MARKER, "model.safetensors", "config.json", "metrics.json", "confusion_test.png", "notes.txt"):
        (tmp_path / name).write_text("x")
    for folder in ("checkpoint-30", "runs/Nov29", "my-plots"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "file").write_text("x")
    assert clear_output_dir(tmp_path) == ["my-plots", "notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-plots", "notes.txt"]
    assert (tmp_path / "my-plots" / "file").is_file()


def test_overwriting_the_current_folder_is_a_one_line_error(tiny_workspace, tmp_path, monkeypatch, capsys):
    """A mistyped output_dir (".") with overwrite_output_dir: refused before anything is touched."""
    data = tiny_config_dict(tmp_path)
    data["data"]["root"] = str(tiny_workspace / "data")
    data["train"].update(output_dir=".", overwrite_output_dir=True)
    config = write_config(tmp_path / "config.yaml", data)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(["--config", str(config)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "output folder . was not made by train.py" in error[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
