"""Shared fixtures (a tiny synthetic dataset and config, made once per session), and what some tests need
that a machine may lack: skipped here, but a failure of the run under CI."""

from __future__ import annotations

import atexit
import ctypes
import importlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

# Hermetic: the user's Hugging Face settings (HF_HUB_OFFLINE=1, a token, another endpoint or cache) must not
# change what the tests see. huggingface_hub and transformers read them once, when first imported, so they
# are cleared here, before anything imports them; tests that talk to the local stand-in Hub set their own.
for _name in [n for n in os.environ if n.startswith(("HF_", "HUGGING_FACE_")) or n in (
        "TRANSFORMERS_OFFLINE", "TRANSFORMERS_CACHE", "HUGGINGFACE_HUB_CACHE")]:
    del os.environ[_name]
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="video-classifier-tests-hf-home-")
atexit.register(shutil.rmtree, os.environ["HF_HOME"], ignore_errors=True)
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
sys.path.insert(0, str(REPO))

from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.data.datasets import ViewDataset  # noqa: E402
from video_classifier.data.decoding import choose_decoder, torchcodec_problem  # noqa: E402
from video_classifier.data.manifest import load_prepared  # noqa: E402
from video_classifier.data.prepare import prepare  # noqa: E402
from video_classifier.model.modeling import load_trained  # noqa: E402

# What some tests need that a machine may lack. Each such test carries the need's mark (pyproject.toml's
# markers). Where a need is missing the test is skipped, and the run ends with one line per missing need:
# what, why, and how to get it. Where the run expects the need (CI: `CI=true bash .ci/run`) the run stops
# before any test with that line instead, so a CI pass cannot go green having run less than it says.
CI = "CI" if os.environ.get("CI", "").lower() not in ("", "0", "false") else None
REALWORLD_VIDEOS = Path(os.environ.get("REALWORLD_VIDEOS", REPO.parent / "shared" / "realworld" / "videos"))
BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
DRIVER = shutil.which("chromedriver")


@cache
def ffmpeg_problem() -> str | None:
    """None where FFmpeg's command line runs here, else why not (not installed, or its libraries hidden)."""
    if shutil.which("ffmpeg") is None:
        return "no ffmpeg on PATH"
    result = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True)
    return None if result.returncode == 0 else f"ffmpeg does not run: {result.stderr.strip()[-200:]}"


def loads(library: Path) -> bool:
    """Whether the shared library loads (a library hidden under /dev/null does not)."""
    try:
        ctypes.CDLL(str(library))
    except OSError:
        return False
    return True


def torchcodec_fix() -> str:
    """Where FFmpeg's libraries are here, the torchcodec installed does not match torch; else they are missing."""
    if find_spec("torchcodec") is None:
        return "pip install -r requirements.txt"
    if any(loads(lib) for lib in Path("/usr/lib").glob("**/libavutil.so.*")):
        return (f"FFmpeg's libraries are here, so torchcodec {version('torchcodec')} does not match torch "
                f"{torch.__version__}: install the torchcodec release built for this torch (torchcodec's README "
                "lists the pairs), or run on PyAV as this run does")
    return "apt-get install ffmpeg (Debian; .ci/run as root installs it) and pip install -r requirements.txt"


def expects(variable: str, default: str | None) -> str | None:
    """What makes this run expect a need, or None. EXPECT_BROWSER / EXPECT_TORCHCODEC: 1, this run must have
    it; 0, it may lack it (.ci/run as non-root says which); unset, `default`."""
    value = os.environ.get(variable)
    return default if value is None else f"{variable}=1" if value == "1" else None


@dataclass(frozen=True)
class Need:
    """Something some tests need that a machine may lack."""

    marker: str  # the tests that need it carry @pytest.mark.<marker>
    what: str
    problem: Callable[[], str | None]  # why it is not here; None where it is
    how_to_get: str | Callable[[], str]  # or a function that tells, where the fix depends on the cause
    expected: str | None  # what makes this run expect it ("CI", "EXPECT_TORCHCODEC=1"): a missing one fails the run
    skips: bool = True  # False: the tests skip themselves (a torchcodec test may check the PyAV side)

    def line(self) -> str:
        fix = self.how_to_get() if callable(self.how_to_get) else self.how_to_get
        return f"{self.what} missing ({self.problem()}): {fix}"


NEEDS = [
    Need("realworld", "the real-world videos",
         cache(lambda: None if REALWORLD_VIDEOS.is_dir() else f"no folder {REALWORLD_VIDEOS}"),
         "put the shared folder beside this clone (../shared/realworld; its README names each file's origin) "
         "or set REALWORLD_VIDEOS to a folder of them", expected=CI),
    Need("browser", "selenium",
         cache(lambda: None if find_spec("selenium") else f"{sys.executable} cannot import it"),
         "pip install -r requirements.txt", expected=expects("EXPECT_BROWSER", CI)),
    Need("browser", "Chromium and chromedriver",
         cache(lambda: ", ".join(f"no {name} on PATH" for name, found in
                                 (("chromium", BROWSER), ("chromedriver", DRIVER)) if not found) or None),
         "apt-get install chromium chromium-driver (Debian; .ci/run as root installs them)",
         expected=expects("EXPECT_BROWSER", CI)),
    Need("torchcodec", "torchcodec on FFmpeg's libraries", torchcodec_problem, torchcodec_fix,
         expected=expects("EXPECT_TORCHCODEC", None), skips=False),
    # Debian's ffmpeg package brings the command line with the libraries torchcodec loads: expected with them
    Need("ffmpeg", "FFmpeg's command line", ffmpeg_problem,
         "apt-get install ffmpeg (Debian; .ci/run as root installs it)", expected=expects("EXPECT_TORCHCODEC", None)),
]
LACKING = pytest.StashKey[Counter]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for need in NEEDS:
            if need.skips and item.get_closest_marker(need.marker) and need.problem():
                item.add_marker(pytest.mark.skip(reason=need.line()))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Among the tests that will run (after -m and -k), those whose need is missing: where the run expects
    the need, it stops here, before 30 minutes of tests, with one line per need."""
    lacking = Counter(need for item in session.items for need in NEEDS
                      if item.get_closest_marker(need.marker) and need.problem())
    session.config.stash[LACKING] = lacking
    refused = [f"{need.expected} refuses to skip: {need.line()} [{need.marker}: {tests} selected tests]"
               for need, tests in lacking.items() if need.expected]
    if refused:
        pytest.exit("\n".join(refused), returncode=pytest.ExitCode.TESTS_FAILED)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    for need, tests in config.stash.get(LACKING, Counter()).items():
        if not need.expected:  # an expected one has stopped the run, saying so
            terminalreporter.write_line(f"not here: {need.line()} [{need.marker}: {tests} selected tests]",
                                        yellow=True)


def tiny_config_dict(root: Path) -> dict:
    """A config small enough for tests: 6 classes, 64x48 videos of 1.2 s, a 32 px model."""
    return {
        "data": {
            "source": "synthetic",
            "root": str(root / "data"),
            "sample_rate": 2,
            "num_workers": 0,
            "synthetic": {
                "width": 64, "height": 48, "fps": 25, "seconds": 1.2,
                "train_groups": 2, "val_groups": 1, "test_groups": 1, "clips_per_group": 1, "seed": 0,
            },
        },
        "model": {
            "checkpoint": str(root / "checkpoint"),
            "tiny_init": {
                "image_size": 32, "patch_size": 8, "num_frames": 4, "tubelet_size": 2,
                "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
            },
        },
        "train": {
            "output_dir": str(root / "run"), "batch_size": 4, "learning_rate": 1e-3, "epochs": 2,
            "horizontal_flip": False, "min_scale": 1.0, "max_scale": 1.25, "logging_steps": 1,
        },
        # fp32: inference is compared exactly with train.py's (fp32) evaluation; test_precision.py covers auto,
        # bf16 and fp16
        "infer": {"top_k": 3, "precision": "fp32"},
    }


def assert_metrics_add_up(split: dict) -> None:
    """A split's metrics agree with each other: top-1 is the confusion matrix's diagonal over the videos it
    scored, every video is in it once, per-class support adds up to them, and top-1 <= top-5."""
    rows = split["confusion_matrix"]["rows_true_columns_predicted"]
    assert sum(map(sum, rows)) == split["videos"] == sum(c["support"] for c in split["per_class"].values())
    assert split["top1"] == pytest.approx(sum(rows[i][i] for i in range(len(rows))) / split["videos"], abs=1e-9)
    assert split["top1"] <= split["top5"]
    recalls = [c["recall"] for c in split["per_class"].values() if c["support"]]
    assert split["mean_class_accuracy"] == pytest.approx(sum(recalls) / len(recalls), abs=1e-9)


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="session")
def tiny_workspace(tmp_path_factory) -> Path:
    """A folder holding config.yaml and the prepared tiny dataset (read-only for tests)."""
    root = tmp_path_factory.mktemp("tiny")
    config_path = write_config(root / "config.yaml", tiny_config_dict(root))
    prepare(load_config(config_path).data)
    return root


@pytest.fixture(scope="session")
def multilabel_workspace(tmp_path_factory) -> Path:
    """The tiny config's videos from the multi-label synthetic set (25 combinations of a pan and a square's
    own motion per group: 50 train, 25 val, 25 test videos), prepared once (read-only for tests)."""
    root = tmp_path_factory.mktemp("multilabel-data")
    data = tiny_config_dict(root)
    data["data"]["synthetic"]["multi_label"] = True
    prepare(load_config(write_config(root / "config.yaml", data)).data)
    return root


# the tiny folder as a Hub dataset (videofolder): its repo id, and our splits' names there
REPO_ID = "someone/tiny-videos"
OUR_TO_THEIRS = {"train": "train", "val": "validation", "test": "test"}


@pytest.fixture(scope="session")
def videofolder(tiny_workspace, tmp_path_factory) -> Path:
    """The tiny prepared folder's videos as a `videofolder` dataset: <split>/<video> and <split>/metadata.csv
    (file_name, label), the splits named as on the Hub (validation)."""
    import csv
    from collections import defaultdict

    from video_classifier.data.manifest import load_prepared

    out = tmp_path_factory.mktemp("hf-dataset") / "tiny-videos"
    _, records = load_prepared(tiny_workspace / "data")
    rows = defaultdict(list)
    for r in records:
        dest = out / OUR_TO_THEIRS[r.split] / Path(r.path).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_workspace / "data" / r.path, dest)
        rows[dest.parent].append((dest.name, r.label))
    for folder, listed in rows.items():
        with open(folder / "metadata.csv", "w", newline="") as f:
            csv.writer(f).writerows([("file_name", "label"), *sorted(listed)])
    return out


def hub_files(folder: Path, repo_id: str = REPO_ID) -> dict:
    """A folder's files as one repo's, for fake_hub.serve_hub."""
    return {(repo_id, p.relative_to(folder).as_posix()): p for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def trained(tiny_workspace, tmp_path_factory):
    """A finished training run on the tiny dataset, made once: (config path, output folder, train stdout)."""
    root = tmp_path_factory.mktemp("run")
    data = tiny_config_dict(root)
    data["data"]["root"] = str(tiny_workspace / "data")
    config_path = write_config(root / "config.yaml", data)
    result = run_script("train.py", "--config", str(config_path))
    assert result.returncode == 0, result.stderr[-3000:]
    return config_path, Path(data["train"]["output_dir"]), result.stdout


@pytest.fixture(scope="session")
def colour_model(tmp_path_factory):
    """A tiny VideoMAE trained on 30 flat-colour videos (Red, Green, Blue; data.source: folder), which it learns in a
    few dozen steps: for tests about windows and segments rather than learning motion. (config, folder)."""
    from videos import COLOURS, write_colours

    import prepare_data
    import train as train_script

    root = tmp_path_factory.mktemp("colours")
    for label in COLOURS:
        for i in range(10):
            write_colours(root / "videos" / label / f"v_{label}_g{i:02d}_c01.avi", [(label, 30)], seed=i)
    config = tiny_config_dict(root)
    config["data"].update(source="folder", videos=str(root / "videos"), split_fractions=[0.6, 0.2, 0.2])
    config["train"].update(epochs=8, max_stride=None)
    config["eval"] = {"num_clips": 1, "num_crops": 1}
    path = write_config(root / "config.yaml", config)
    prepare_data.main(["--config", str(path)])
    train_script.main(["--config", str(path)])
    return path, Path(config["train"]["output_dir"])


def torch_test_logits(config_path: Path, out: Path, clips: int, split: str = "test") -> tuple[str, torch.Tensor, Any]:
    """`clips` clips (one crop) of each `split` video of a trained run, decoded with PyAV and normalised, and
    the run's torch fp32 logits for them: (the model's input name, pixels, logits as numpy), a reference that
    exported copies are checked against."""
    config = load_config(config_path)
    model, spec = load_trained(str(out), config.data.sample_rate)
    label2id, records = load_prepared(config.data.root)
    test = [r for r in records if r.split == split]
    views = ViewDataset(test, config.data.root, label2id, spec.preprocess, clips, 1, choose_decoder("pyav").decode)
    pixels = spec.pixels(torch.cat([views[i]["views"] for i in range(len(test))]))
    with torch.inference_mode():
        logits = model(**spec.inputs(pixels)).logits.numpy()
    return spec.input_key, pixels, logits


def talk_to_hub(monkeypatch: pytest.MonkeyPatch, hub: Any, cache: Path) -> None:
    """Make this process talk to `hub` (a fake_hub server), as if started with HF_ENDPOINT pointing at it,
    with its own download cache."""
    import transformers.utils.hub
    from huggingface_hub import constants

    for name, value in {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_dummy", "HF_HUB_DISABLE_TELEMETRY": "1",
                        "HF_HUB_OFFLINE": "0"}.items():
        monkeypatch.setenv(name, value)  # the token is read when a request is made
    # what huggingface_hub read from the environment when it was imported
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", None)  # transformers' HfApi keeps its endpoint


def run_main(script: str, *args: str) -> subprocess.CompletedProcess:
    """Call a script's main(argv) in this process: its exit code (0, or SystemExit's), stdout and stderr.
    For what a subprocess adds nothing to; `run_script` runs the real command line."""
    module = importlib.import_module(Path(script).stem)
    out, err, code = io.StringIO(), io.StringIO(), 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            module.main(list(args))
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    return subprocess.CompletedProcess([script, *args], code, out.getvalue(), err.getvalue())


def run_script(script: str, *args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run one of the project's scripts as a user would, capturing its output."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=cwd or REPO, env=full_env, capture_output=True, text=True, timeout=600,
    )
