"""When the Hub cannot be reached or refuses: one line that names the case, at once, nothing written.

The scripts run as a user runs them (subprocesses, the Hub's settings in their environment) against a closed
loopback port and with HF_HUB_OFFLINE=1 and an empty cache; the Hub's answers (401, 403, 404 of the repo
and of the file, 503 then the file) come from tests/fake_hub.py on 127.0.0.1, through core/hub.py's
hub_call and huggingface_hub's own download and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_script, tiny_config_dict, write_config
from fake_hub import serve_hub

from video_classifier.core import hub

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there
MODEL = "someone/some-videomae"
DEMO = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def scripts(tmp_path, tiny_workspace) -> dict[str, list[str]]:
    """Each script's command line that needs the Hub first, and what it must not have written."""
    recipe = tiny_config_dict(tmp_path)
    recipe["data"].update(source="hub", hub_repo="someone/videos", hub_filename="videos.tar.gz")
    prepare_cfg = write_config(tmp_path / "prepare.yaml", recipe)
    trained = tiny_config_dict(tmp_path)
    trained["data"]["root"] = str(tiny_workspace / "data")
    trained["model"] = {"checkpoint": MODEL}
    train_cfg = write_config(tmp_path / "train.yaml", trained)
    video = next((tiny_workspace / "data" / "test").rglob("*.avi"))
    return {"prepare_data.py": ["--config", str(prepare_cfg)],
            "train.py": ["--config", str(train_cfg)],
            "infer.py": ["--config", str(train_cfg), "--model", MODEL, str(video)],
            "app.py": ["--config", str(train_cfg), "--model", MODEL, "--port", "9"]}


@pytest.mark.parametrize("case", ["closed port", "offline, empty cache"])
def test_each_script_says_the_case_in_one_line_without_retrying(case, tmp_path, tiny_workspace):
    env = {"HF_HOME": str(tmp_path / "home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.update({"HF_ENDPOINT": CLOSED, "HF_HUB_OFFLINE": "0"} if case == "closed port" else {"HF_HUB_OFFLINE": "1"})
    expected = "does not answer at HF_ENDPOINT http://127.0.0.1:9 (connection refused)" if case == "closed port" \
        else "HF_HUB_OFFLINE=1 is set and the"
    for script, args in scripts(tmp_path, tiny_workspace).items():
        result = run_script(script, *args, env=env)
        last = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 2, (script, result.stderr[-2000:])
        assert last.startswith("error: ") and expected in last, (script, last)
        assert "Retry" not in result.stderr and "Traceback" not in result.stderr, script
        assert "not found" not in last, script  # never blames the name when the network is the problem
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()  # nothing written


@pytest.fixture
def fake(tmp_path):
    """A stand-in Hub serving one dataset archive (not a real one: a run that gets it stops at extracting)."""
    archive = tmp_path / "videos.tar.gz"
    archive.write_bytes(b"not really an archive")
    with serve_hub({("someone/videos", "videos.tar.gz"): archive}) as served:
        yield served


def prepare_against(served, tmp_path, *sets: str):
    """prepare_data.py with the recipe's data from the stand-in Hub."""
    recipe = tiny_config_dict(tmp_path)
    recipe["data"].update(source="hub", hub_repo="someone/videos", hub_filename="videos.tar.gz")
    config = write_config(tmp_path / "prepare.yaml", recipe)
    env = {"HF_ENDPOINT": served.url, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    sets = [item for s in sets for item in ("--set", s)]
    result = run_script("prepare_data.py", "--config", str(config), *sets, env=env)
    return result, result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("status", [401, 403])
def test_a_private_or_gated_repo_says_log_in(fake, tmp_path, status):
    fake.refuse["someone/videos"] = status
    result, last = prepare_against(fake, tmp_path)
    assert result.returncode == 2 and "is gated or private" in last
    assert "hf auth login" in last and "HF_TOKEN" in last and "not found" not in last


def test_not_found_names_the_repo_or_the_file_and_the_setting(fake, tmp_path):
    result, last = prepare_against(fake, tmp_path, "data.hub_repo=someone/elsewhere")
    assert result.returncode == 2 and "repo someone/elsewhere was not found on the Hub" in last
    assert last.endswith("check data.hub_repo")
    result, last = prepare_against(fake, tmp_path, "data.hub_filename=other.tar.gz")
    assert result.returncode == 2 and last.endswith("holds no file other.tar.gz: check data.hub_filename")


def test_a_503_is_retried_said_once_and_then_succeeds(fake, tmp_path):
    fake.flaky["someone/videos"] = 2
    result, last = prepare_against(fake, tmp_path)
    assert fake.flaky["someone/videos"] == 0  # both 503s were answered, and the download went on
    assert result.stderr.lower().count("retrying") == 1
    assert "cannot read archive" in result.stderr  # the file arrived: it is just not an archive


def test_a_model_repo_that_is_missing_or_private(fake, tmp_path, tiny_workspace):
    video = next((tiny_workspace / "data" / "test").rglob("*.avi"))
    env = {"HF_ENDPOINT": fake.url, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    config = write_config(tmp_path / "c.yaml", tiny_config_dict(tmp_path))
    result = run_script("infer.py", "--config", str(config), "--model", MODEL, str(video), env=env)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and f"repo {MODEL} was not found on the Hub" in last, last
    fake.refuse[MODEL] = 401
    result = run_script("infer.py", "--config", str(config), "--model", MODEL, str(video), env=env)
    assert result.returncode == 2 and "is gated or private" in result.stderr.strip().splitlines()[-1]


def test_the_probe_classifies_a_closed_port_at_once(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", CLOSED)
    hub._reasons.clear()
    assert hub.unreachable() == "connection refused"
    monkeypatch.setenv("HF_ENDPOINT", "http://no-such-host.invalid")
    assert hub.unreachable() == "its name does not resolve"  # .invalid never resolves (RFC 6761)
    hub._reasons.clear()


def test_a_cached_file_is_used_when_the_hub_does_not_answer(fake, tmp_path):
    result, _ = prepare_against(fake, tmp_path)  # downloads the (not really an) archive into the cache
    assert "cannot read archive" in result.stderr
    recipe = tmp_path / "prepare.yaml"
    env = {"HF_ENDPOINT": CLOSED, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    again = run_script("prepare_data.py", "--config", str(recipe), env=env)
    assert "the Hub does not answer at http://127.0.0.1:9 (connection refused): using the cached dataset" in again.stderr
    assert "cannot read archive" in again.stderr and "Retry" not in again.stderr  # the cached bytes, at once


HEAVY = ("torch", "transformers", "gradio")


@pytest.mark.parametrize("case", ["closed port", "offline, empty cache"])
def test_each_script_ends_before_it_imports_torch(case, tmp_path, tiny_workspace):
    """The line comes before the seconds of torch's and transformers' imports (core/preflight.py): each
    script's imports, as Python's own -X importtime lists them, hold none of them."""
    env = {"HF_HOME": str(tmp_path / "home"), "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONPROFILEIMPORTTIME": "1"}
    env.update({"HF_ENDPOINT": CLOSED, "HF_HUB_OFFLINE": "0"} if case == "closed port" else {"HF_HUB_OFFLINE": "1"})
    for script, args in scripts(tmp_path, tiny_workspace).items():
        result = run_script(script, *args, env=env)
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                    if line.startswith("import time:")}
        assert result.returncode == 2 and "huggingface_hub" in imported, (script, result.stderr[-1000:])
        assert not imported & set(HEAVY), (script, sorted(imported & set(HEAVY)))
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "not found" not in errors[0], (script, errors)


def test_the_check_passes_a_cached_checkpoint_and_names_an_uncached_one(tmp_path, monkeypatch):
    """check_hub_files with the endpoint closed: a checkpoint whose config.json came down earlier passes, as
    does a folder; another Hub id gets the no-answer line naming it; offline, the offline line."""
    from huggingface_hub import hf_hub_download

    from video_classifier.core import preflight
    from video_classifier.core.config import load_config

    model_config = tmp_path / "config.json"
    model_config.write_text('{"model_type": "videomae"}')
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "home" / "hub"))
    with serve_hub({(MODEL, "config.json"): model_config}, repo_type="model") as served:
        hf_hub_download(MODEL, "config.json", endpoint=served.url)
    monkeypatch.setenv("HF_ENDPOINT", CLOSED)
    hub._reasons.clear()
    config = load_config(DEMO)
    preflight.check_hub_files(preflight.model_files(MODEL, config))  # in the cache: passes
    assert preflight.model_files(str(tmp_path), config) == []  # a folder: nothing to check
    with pytest.raises(preflight.UserError, match=r"Hub does not answer at HF_ENDPOINT http://127.0.0.1:9 "
                                                  r"\(connection refused\) and the model someone/other is not"):
        preflight.check_hub_files(preflight.model_files("someone/other", config))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(preflight.UserError, match="HF_HUB_OFFLINE=1 is set and the model someone/other was never"):
        preflight.check_hub_files(preflight.model_files("someone/other", config))
    preflight.check_hub_files(preflight.model_files(MODEL, config))
    hub._reasons.clear()


def test_an_untrained_run_folder_says_train_first(tmp_path):
    """infer.py and app.py without --model read train.output_dir, a folder train.py writes: where it is
    missing the line says to train, never that the Hub lacks a repo of that name."""
    from video_classifier.core import preflight
    from video_classifier.core.config import load_config

    config = load_config(DEMO, [f"train.output_dir={tmp_path / 'run'}"])
    with pytest.raises(preflight.UserError, match=r"train.output_dir\) not found: train first"):
        preflight.trained_model(None, config)
    assert preflight.trained_model("someone/model", config) == "someone/model"
    assert preflight.trained_model(None, config, zero_shot=True) == config.model.checkpoint
    assert [preflight.is_hub_id(r) for r in ("a/b", "bert-base", "./a", "/a/b", "a/b/c", "~/x")] == \
        [True, True, False, False, False, False]
