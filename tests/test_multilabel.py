"""Multi-label runs end to end: a list or the synthetic set with several labels per video (or none) trains
with binary cross-entropy, is evaluated by mAP, saves problem_type and per-class thresholds, and every
reader of the saved folder (infer.py, the stock pipeline, the timeline, ONNX, the model card) gets the
sigmoid scores."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import run_main, tiny_config_dict, write_config
from sklearn.metrics import average_precision_score

import export as export_script
from video_classifier.core.config import DataConfig
from video_classifier.core.task import MultiLabel, task_for
from video_classifier.data.decoding import decode_pyav
from video_classifier.data.manifest import load_prepared, prepared_task
from video_classifier.data.prepare import prepare
from video_classifier.data.preprocessing import clip_frame_indices, exact_fps, spread_clip_starts


def test_multi_label_scores_loss_and_metrics():
    task = MultiLabel()
    label2id = {"a": 0, "b": 1, "c": 2}
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 3.0, -2.0], [-1.0, -2.0, -3.0], [0.0, 1.0, 2.0]])
    targets = [task.target(label, label2id) for label in ("a|c", "b", "", "b|c")]
    y = torch.stack(targets)
    assert y.tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 0], [0, 1, 1]]
    scores = task.scores(logits)
    assert torch.equal(scores, logits.sigmoid())
    assert task.loss(logits, y).item() == pytest.approx(
        torch.nn.functional.binary_cross_entropy_with_logits(logits, y).item(), abs=1e-7)
    metrics = task.video_metrics(scores, targets, ["a", "b", "c"])
    expected_ap = [average_precision_score(y[:, c], scores[:, c]) for c in range(3)]
    assert metrics["mAP"] == pytest.approx(np.mean(expected_ap))
    assert metrics["micro_mAP"] == pytest.approx(average_precision_score(y.ravel(), scores.ravel()))
    assert metrics["per_class"]["c"]["support"] == 2 and metrics["videos_without_labels"] == 1
    # at 0.5 (scores >= 0.5): {a, c}, {a, b}, {}, {a, b, c}: rows 0 and 2 exact
    assert metrics["at_0.5_exact_match"] == 0.5
    # thresholds chosen on these scores put every class's F1 at its best: here every class separable
    fitted = task.fitted(scores, targets)
    assert fitted.video_metrics(scores, targets, ["a", "b", "c"])["at_thresholds_exact_match"] == 1.0
    shown = fitted.shown(scores, {0: "a", 1: "b", 2: "c"}, top_k=1)
    assert [labels for labels, _ in shown] == [["a", "c"], ["b"], [], ["c", "b"]]  # as many as reach, best first
    # each shown label's score reaches that label's own threshold, and every label left out is below its own
    label2id_shown = {"a": 0, "b": 1, "c": 2}
    for (labels, values), row in zip(shown, scores, strict=True):
        assert values == [row[label2id_shown[label]].item() for label in labels]
        for label, c in label2id_shown.items():
            assert (label in labels) == (row[c].item() >= fitted.thresholds[c]), (label, row, fitted.thresholds)


def test_balanced_class_weights_follow_the_training_counts():
    labels, label2id = ["a", "a", "a", "b"], {"a": 0, "b": 1, "c": 2}
    from video_classifier.core.task import SingleLabel

    assert SingleLabel().class_weights(labels, label2id).tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])
    # multi-label: pos_weight = negatives / positives
    assert MultiLabel().class_weights(["a|b", "a", "", "c"], label2id).tolist() == pytest.approx([1.0, 3.0, 3.0])


def test_a_list_with_a_labels_column_prepares_a_multi_label_folder(tiny_workspace, tmp_path):
    """.csv "a|b" and .jsonl ["a", "b"] lists, zero labels allowed; the split report counts each label."""
    videos = sorted((tiny_workspace / "data").glob("*/*/*.avi"))[:12]
    names = [["PanUp", "PanLeft"], ["PanUp"], [], ["PanLeft"]] * 3
    rows = [{"path": str(v), "labels": "|".join(n), "split": ("train", "train", "val", "test")[i % 4]}
            for i, (v, n) in enumerate(zip(videos, names))]
    with open(tmp_path / "list.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "labels", "split"])
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / "list.jsonl").write_text("".join(json.dumps({**r, "labels": n}) + "\n" for r, n in zip(rows, names)))
    manifests = []
    for name in ("list.csv", "list.jsonl"):
        root = tmp_path / f"data-{name}"
        prepare(DataConfig(source="folder", root=str(root), videos=str(tmp_path / name)))
        assert prepared_task(root) == "multi_label"
        label2id, records = load_prepared(root)
        assert label2id == {"PanLeft": 0, "PanUp": 1}
        manifests.append([(r.label, r.split) for r in records])
        report = {row["class"]: row for row in csv.DictReader(open(root / "splits.csv"))}
        assert report["PanUp"]["train"] == "6" and report["(no label)"]["val"] == "3"
    assert manifests[0] == manifests[1]
    assert ("PanLeft|PanUp", "train") in manifests[0] and ("", "val") in manifests[0]


def test_a_bad_labels_value_is_one_line(tmp_path):
    (tmp_path / "list.jsonl").write_text(json.dumps({"path": "a.avi", "labels": {"x": 1}}) + "\n")
    with pytest.raises(Exception, match=r"list.jsonl line 1: labels must be a list of strings"):
        prepare(DataConfig(source="folder", root=str(tmp_path / "d"), videos=str(tmp_path / "list.jsonl")))


@pytest.fixture(scope="module")
def multilabel_run(multilabel_workspace, tmp_path_factory):
    """train.py with class weights and the balanced sampler on the tiny multi-label set: (config path,
    output folder, data root)."""
    root = tmp_path_factory.mktemp("multilabel")
    data = tiny_config_dict(root)
    data["data"]["root"] = str(multilabel_workspace / "data")
    data["train"].update(epochs=1, class_weights="balanced", sampler="balanced")
    config_path = write_config(root / "config.yaml", data)
    result = run_main("train.py", "--config", str(config_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "task: multi_label" in result.stdout and "class-balanced sampling" in result.stdout
    return config_path, Path(data["train"]["output_dir"]), Path(data["data"]["root"])


def test_the_saved_model_describes_its_task(multilabel_run):
    _, out, _ = multilabel_run
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    # the thresholds chosen on val are folded into the classifier: every class is read at 0.5 (folding.py)
    assert sorted(config["label_thresholds_folded"]) == sorted(config["label2id"])
    assert all(0 < t < 1 for t in config["label_thresholds_folded"].values())
    assert config["label_thresholds"] == dict.fromkeys(config["label2id"], 0.5)
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    assert metrics["val"]["thresholds"] == config["label_thresholds_folded"]
    assert "at_thresholds_micro_f1" in test and "confusion_matrix" not in test
    assert 0 <= test["pipeline_exact_match"] <= 1
    # test mAP recomputed from the saved per-video scores and the labels: scikit-learn's macro AP over the
    # classes with a positive video (a class with none has no AP and is left out)
    rows = json.loads((out / "scores_test.json").read_text())
    classes = sorted(config["label2id"], key=config["label2id"].get)
    y = np.array([[name in r["label"].split("|") for name in classes] for r in rows])
    s = np.array([[r["scores"][name] for name in classes] for r in rows])
    present = y.any(0)
    assert len(rows) == test["videos"] > 0 and present.any()
    assert test["mAP"] == pytest.approx(average_precision_score(y[:, present], s[:, present], average="macro"))
    assert sum(c["support"] for c in test["per_class"].values()) == sum(
        len(r.label.split("|")) for r in load_prepared(multilabel_run[2])[1] if r.split == "test" and r.label)
    assert (out / "per_class_test.png").is_file()
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    (result,) = card.data.eval_results[:1]
    assert result.metric_type == "mAP" and result.metric_value == round(test["mAP"], 4)


def test_the_stock_pipeline_gives_sigmoid_scores_equal_to_infer_on_the_centre_clip(multilabel_run):
    """pipeline("video-classification", model=out) with no arguments applies a sigmoid (problem_type); given
    the centre clip's frames it scores what infer.py --clips 1 --crops 1 does, for every test video, and its
    labels over 0.5 (as its users read them) are infer.py's labels: the thresholds are in the weights."""
    from transformers import pipeline

    config_path, out, data_root = multilabel_run
    _, records = load_prepared(data_root)
    test = [r for r in records if r.split == "test"]
    result = run_main("infer.py", "--config", str(config_path), "--model", str(out), "--clips", "1", "--crops", "1",
                      "--json", *[str(data_root / r.path) for r in test])
    assert result.returncode == 0, result.stderr[-2000:]
    predictions = json.loads(result.stdout)
    labels = json.loads((out / "config.json").read_text())["label2id"]
    classify = pipeline("video-classification", model=str(out))
    model_config = classify.model.config
    num_frames, length = model_config.num_frames, model_config.num_frames * model_config.sample_rate
    assert test and len(predictions) == len(test)
    for record, predicted in zip(test, predictions, strict=True):
        start = spread_clip_starts(record.duration, length / record.fps, 1)[0]
        indices = clip_frame_indices(start, start + length / record.fps, exact_fps(record.fps), record.frames,
                                     num_frames)
        frames = decode_pyav(data_root / record.path, indices, record.fps).permute(0, 2, 3, 1).numpy()
        piped = {r["label"]: r["score"] for r in classify(frames, top_k=len(labels))}
        assert sum(piped.values()) != pytest.approx(1.0, abs=1e-3)  # sigmoids, not a softmax
        # infer.py shows exactly the labels whose pipeline score passes 0.5, with the pipeline's scores
        above = sorted((label for label, s in piped.items() if s >= 0.5), key=lambda k: -piped[k])
        assert predicted["labels"] == above
        assert predicted["scores"] == pytest.approx([piped[label] for label in predicted["labels"]], abs=1e-5)


def test_infer_lists_every_label_above_its_threshold_and_the_timeline_gives_intervals(multilabel_run, tmp_path):
    config_path, out, data_root = multilabel_run
    video = sorted(data_root.glob("test/PanUp+ObjectLeft/*.avi"))[0]
    result = run_main("infer.py", "--config", str(config_path), "--model", str(out), "--json", str(video))
    assert result.returncode == 0, result.stderr[-2000:]
    (prediction,) = json.loads(result.stdout)
    thresholds = json.loads((out / "config.json").read_text())["label_thresholds"]
    evaluated = {e["video"]: e["scores"] for e in json.loads((out / "scores_test.json").read_text())}
    scores = evaluated[str(video.relative_to(data_root))]  # infer.py's views are the evaluation's
    assert prediction["labels"] == sorted((k for k, s in scores.items() if s >= thresholds[k]), key=lambda k: -scores[k])
    assert prediction["scores"] == pytest.approx([scores[k] for k in prediction["labels"]], abs=1e-5)

    result = run_main("infer.py", "--config", str(config_path), "--model", str(out), "--timeline", "--json",
                      "--switch-cost", "0", "--out", str(tmp_path), str(video))
    assert result.returncode == 0, result.stderr[-2000:]
    (timeline,) = json.loads(result.stdout)
    windows = json.loads(Path(timeline["files"]["json"]).read_text())["windows"]
    # at switch cost 0 a class is on in a window exactly where its score reaches its threshold
    for segment in timeline["segments"]:
        inside = [w for w in windows if segment["start"] <= w["start"] + timeline["window"] / 2 <= segment["end"]]
        assert inside and all(any(t["label"] == segment["label"] and t["score"] >= thresholds[segment["label"]]
                                  for t in w["top"]) for w in inside)


def test_onnx_export_keeps_the_task(multilabel_run, tmp_path):
    config_path, out, data_root = multilabel_run
    export_script.main(["--config", str(config_path), "--model", str(out), "--out", str(tmp_path / "onnx"),
                        "--clips", "5"])
    assert json.loads((tmp_path / "onnx" / "parity.json").read_text())["passed"]
    videos = str(data_root / "test")
    results = {}
    for backend, model in (("torch", out), ("onnxruntime", tmp_path / "onnx")):
        result = run_main("infer.py", "--config", str(config_path), "--model", str(model), "--backend", backend,
                          "--json", videos)
        assert result.returncode == 0, result.stderr[-2000:]
        results[backend] = json.loads(result.stdout)
    assert len(results["torch"]) == len(results["onnxruntime"]) == len(list((data_root / "test").glob("*/*.avi"))) > 0
    for a, b in zip(results["torch"], results["onnxruntime"], strict=True):
        assert a["labels"] == b["labels"] and a["scores"] == pytest.approx(b["scores"], abs=1e-4)
    from video_classifier.serve.onnx_export import load_onnx

    assert task_for(load_onnx(tmp_path / "onnx")[0].config).thresholds is not None


def test_single_label_task_on_a_multi_label_folder_is_one_line(multilabel_run, tmp_path):
    config_path, _, _ = multilabel_run
    data = yaml.safe_load(config_path.read_text())
    data["train"].update(task="single_label", output_dir=str(tmp_path / "run"))
    result = run_main("train.py", "--config", str(write_config(tmp_path / "c.yaml", data)))
    assert result.returncode == 2 and "train.task: single_label" in result.stderr


def test_the_web_page_shows_the_labels_above_their_thresholds_and_charts_every_class(multilabel_run, tmp_path):
    """The page's answer for a multi-label model: infer.py's labels and scores, and a chart of every class's
    score against its threshold (the ones chosen on val)."""
    from video_classifier.core.config import load_config
    from video_classifier.serve.web import answer, load_demo

    config_path, out, data_root = multilabel_run
    video = sorted(data_root.glob("test/PanUp+ObjectLeft/*.avi"))[0]
    result = run_main("infer.py", "--config", str(config_path), "--model", str(out), "--json", "--top-k", "8",
                      str(video))
    (predicted,) = json.loads(result.stdout)
    got = answer(load_demo(str(out), load_config(config_path)), str(video), tmp_path)
    assert list(got.labels) == predicted["labels"]
    assert list(got.labels.values()) == pytest.approx(predicted["scores"], abs=1e-6)
    ax = got.chart.axes[0]
    bars = {tick.get_text(): bar.get_width() for tick, bar in zip(ax.get_yticklabels(), ax.patches)}
    thresholds = json.loads((out / "config.json").read_text())["label_thresholds"]
    assert set(bars) == set(thresholds)  # every class, not only the shown ones
    assert {k for k, v in bars.items() if v >= thresholds[k]} == set(predicted["labels"])
    marks = ax.collections[0].get_offsets()[:, 0].tolist()
    assert sorted(marks) == pytest.approx(sorted(thresholds.values()))


def test_thresholds_chosen_on_val_reach_each_class_best_f1():
    """Against every candidate threshold tried one by one (scores with ties, classes with few positives)."""
    from sklearn.metrics import f1_score

    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        scores = torch.rand(40, 3, generator=generator).round(decimals=1)
        labels = [(torch.rand(3, generator=generator) > 0.6).float() for _ in range(40)]
        chosen = MultiLabel.choose_thresholds(scores, labels)
        y = torch.stack(labels).numpy() > 0.5
        for c in range(3):
            if not y[:, c].any():
                assert chosen[c] == 0.5
                continue
            best = max(f1_score(y[:, c], scores[:, c].numpy() >= v) for v in set(scores[:, c].tolist()))
            assert f1_score(y[:, c], scores[:, c].numpy() >= chosen[c]) == pytest.approx(best, abs=1e-12)
