"""Data-parallel training under torchrun on CPU (gloo): sharded epochs, one set of weights, one output."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, tiny_config_dict, write_config


def torchrun(config_path: Path) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 train.py`, as a user launches it on one machine."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "train.py"), "--config", str(config_path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def digests(stdout: str) -> dict[str, str]:
    return dict(re.findall(r"process (\d) of 2: \d+ steps, weights ([0-9a-f]{16})", stdout))


@pytest.fixture(scope="module")
def ddp_run(tiny_workspace, tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    data = tiny_config_dict(root)
    data["data"]["root"] = str(tiny_workspace / "data")
    config_path = write_config(root / "config.yaml", data)
    result = torchrun(config_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return data, Path(data["train"]["output_dir"]), result


def test_each_process_trains_on_its_own_shard(ddp_run):
    _, out, result = ddp_run
    # 16 videos / (batch 4 x 2 processes) = 2 steps per epoch, not 4
    assert "batch 4 x 2 processes = effective batch 8, 2 steps/epoch x 2 epochs = 4 steps" in result.stdout
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and not (out / "checkpoint-8").exists()


def test_processes_end_with_the_same_weights(ddp_run):
    _, _, result = ddp_run
    found = digests(result.stdout)
    assert sorted(found) == ["0", "1"] and found["0"] == found["1"], result.stdout[-2000:]


def test_one_process_writes_and_evaluates_once(ddp_run):
    _, out, result = ddp_run
    assert result.stdout.count("test: video-level top-1") == 1
    assert result.stdout.count("metrics, confusion matrices and per-video scores") == 1
    assert result.stdout.count("train: 16 videos") == 1
    assert json.loads((out / "metrics.json").read_text())["test"]["videos"] == 8
    assert (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file()


def test_interrupted_run_resumes_on_two_processes(ddp_run, tmp_path):
    data, out, _ = ddp_run
    data["train"]["output_dir"] = str(tmp_path / "run")
    shutil.copytree(out / "checkpoint-2", tmp_path / "run" / "checkpoint-2")  # what a crash after epoch 1 leaves
    result = torchrun(write_config(tmp_path / "config.yaml", data))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming from {tmp_path / 'run' / 'checkpoint-2'}" in result.stdout
    assert json.loads((tmp_path / "run" / "checkpoint-4" / "trainer_state.json").read_text())["global_step"] == 4
    found = digests(result.stdout)
    assert sorted(found) == ["0", "1"] and found["0"] == found["1"]
