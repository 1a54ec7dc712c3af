"""The web page's logic without a browser: its scores are predict_manual's, errors are one line, a long
video gets a timeline, the card reads the run's metrics, and a written Space builds its page offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import videos
from conftest import run_main

from video_classifier.core.config import load_config
from video_classifier.data.manifest import load_prepared
from video_classifier.serve.bounds import Limits
from video_classifier.serve.inference import predict_manual
from video_classifier.serve.web import answer, build_page, card_facts, load_demo


@pytest.fixture(scope="module")
def demo(trained):
    config_path, folder, _ = trained
    return load_demo(str(folder), load_config(config_path))


def split_videos(config) -> list[Path]:
    """The test split's videos."""
    _, records = load_prepared(config.data.root)
    return [Path(config.data.root) / r.path for r in records if r.split == "test"]


def test_page_gives_predict_manuals_labels_and_scores(demo, tmp_path):
    for video in split_videos(demo.config)[:3]:
        expected = predict_manual(demo.model, demo.spec, [video], demo.config, demo.config.infer.top_k)[0]
        got = answer(demo, str(video), tmp_path)
        assert list(got.labels) == expected.labels and list(got.labels.values()) == expected.scores  # exactly
        assert got.status.startswith(f"{video.name} ({expected.views}): {expected.labels[0]} {expected.scores[0]:.4f}")
        assert got.chart is None and got.timeline_png is None  # single-label; 1.2 s is under 4 clips of 0.32 s


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "not a video"])
def test_a_bad_file_is_one_error_line_and_the_next_video_still_works(demo, tmp_path, damage):
    good = split_videos(demo.config)[0]
    if damage == "random bytes":
        bad = tmp_path / "random.avi"
        bad.write_bytes(os.urandom(20000))
    elif damage == "truncated":
        bad = tmp_path / "truncated.avi"
        bad.write_bytes(good.read_bytes()[:2000])
    else:
        bad = tmp_path / "notes.txt"
        bad.write_text("not a video\n")
    got = answer(demo, str(bad), tmp_path)
    assert got.status.startswith("error: ") and "\n" not in got.status, got.status
    assert bad.name in got.status and str(tmp_path) not in got.status  # the file's name, not the server's path
    assert got.labels == {}
    assert answer(demo, str(good), tmp_path).labels  # the page goes on answering


def test_too_large_a_file_is_refused_before_decoding(demo, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "limits", Limits(upload_mb=0.001))  # 1 kB: every test video is larger
    got = answer(demo, str(split_videos(demo.config)[0]), tmp_path)
    assert got.status.startswith("error: ") and "over the page's 0.001 MB" in got.status


def test_a_long_video_gets_the_timeline(demo, tmp_path):
    long = videos.write(tmp_path / "long.avi", n=100)  # 4 s at 25 fps: 12 clips of 0.32 s
    got = answer(demo, str(long), tmp_path / "out")
    assert Path(got.timeline_png).is_file() and got.timeline_png.endswith("long.timeline.png")
    assert got.segments and got.segments[0][0] == 0.0 and got.segments[-1][1] == pytest.approx(4.0, abs=0.05)
    assert {s[2] for s in got.segments} <= set(demo.spec.id2label.values())


def test_card_shows_architecture_classes_and_test_metrics(demo, trained):
    _, folder, _ = trained
    test = json.loads((folder / "metrics.json").read_text())["test"]
    card = card_facts(demo)
    assert "videomae" in card and f"{len(demo.spec.id2label)} classes" in card
    assert all(label in card for label in demo.spec.id2label.values())
    assert f"top1 {test['top1']:.3f}" in card and f"{test['videos']} videos" in card


def test_page_builds_with_the_runs_test_videos_as_examples(demo):
    import gradio as gr

    page = build_page(demo)
    assert isinstance(page, gr.Blocks)
    examples = [b for b in page.blocks.values() if isinstance(b, gr.Dataset)]
    assert len(examples) == 1 and len(examples[0].samples) == len(demo.spec.id2label)  # one per class


def test_space_folder_builds_its_page_offline_and_predicts_as_infer(trained, tmp_path):
    config_path, folder, _ = trained
    space = tmp_path / "space"
    result = run_main("app.py", "--model", str(folder), "--space", str(space))
    assert result.returncode == 0, result.stderr
    readme = (space / "README.md").read_text()
    assert readme.startswith("---\n") and "sdk: gradio\n" in readme and "app_file: app.py\n" in readme
    requirements = (space / "requirements.txt").read_text()
    assert "torch>=" in requirements and "pytest" not in requirements and "gradio" not in requirements
    assert (space / "model" / "model.safetensors").is_file() and not list((space / "model").glob("checkpoint-*"))
    video = split_videos(load_config(config_path))[0]
    infer = json.loads(run_main("infer.py", str(video), "--model", str(folder), "--json").stdout)[0]
    # the Space's own app.py and its copy of the package, in a fresh process: imported, the page built
    probe = ("import json, runpy, sys; from pathlib import Path; import video_classifier as vc; "
             "ns = runpy.run_path('app.py'); from video_classifier.serve.web import answer; "
             f"a = answer(ns['demo'], {str(video)!r}, Path('out')); "
             "print(json.dumps([vc.__file__, type(ns['page']).__name__, list(a.labels), len(ns['page'].blocks)]))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", probe], cwd=space, capture_output=True, text=True, timeout=300,
                         env={**env, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    package, kind, labels, blocks = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(package).resolve().is_relative_to(space.resolve())  # the copy, not this checkout
    assert kind == "Blocks" and blocks > 5
    assert labels == infer["labels"]


def test_space_with_a_hub_id_names_it_and_copies_no_model(trained, tmp_path):
    _, folder, _ = trained
    space = tmp_path / "space"
    assert run_main("app.py", "--model", str(folder), "--space", str(space), "--hub-id", "me/tiny").returncode == 0
    assert "MODEL = 'me/tiny'" in (space / "app.py").read_text()
    assert "models:\n- me/tiny\n" in (space / "README.md").read_text() and not (space / "model").exists()
    again = run_main("app.py", "--model", str(folder), "--space", str(space))
    errors = [line for line in again.stderr.splitlines() if line.startswith("error: ")]
    assert again.returncode == 2 and len(errors) == 1 and "is not empty" in errors[0]


def test_page_serves_an_onnx_export_with_infers_onnxruntime_scores(trained, tmp_path):
    config_path, folder, _ = trained
    onnx = tmp_path / "run" / "onnx"  # where export.py puts it by default: <run>/onnx, beside metrics.json
    onnx.parent.mkdir()
    shutil.copy2(folder / "metrics.json", onnx.parent / "metrics.json")
    exported = run_main("export.py", "--config", str(config_path), "--model", str(folder), "--out", str(onnx))
    assert exported.returncode == 0, exported.stderr
    config = load_config(config_path)
    demo = load_demo(str(onnx), config, "onnxruntime")
    video = split_videos(config)[0]
    infer = json.loads(run_main("infer.py", str(video), "--config", str(config_path), "--model", str(onnx),
                                "--backend", "onnxruntime", "--json").stdout)[0]
    got = answer(demo, str(video), tmp_path)
    assert list(got.labels) == infer["labels"] and list(got.labels.values()) == infer["scores"]
    card = card_facts(demo)  # the export's test metrics are its run's, in the folder above it
    assert "(onnxruntime)" in card and "top1 " in card
