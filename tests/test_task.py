"""task.py owns what a label means: scores, loss, metrics; nothing else in the package applies them."""

from __future__ import annotations

import re

import torch
from conftest import REPO

from video_classifier.core.task import SingleLabel


def test_single_label_scores_loss_and_metrics():
    task = SingleLabel()
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    scores = task.scores(logits)
    assert torch.allclose(scores.sum(-1), torch.ones(4)) and task.predicted(scores).tolist() == [0, 1, 2, 0]
    labels = torch.tensor([0, 1, 1, 2])
    assert task.loss(logits, labels).item() == torch.nn.functional.cross_entropy(logits, labels).item()
    metrics = task.video_metrics(scores, labels.tolist(), ["a", "b", "c"])
    assert metrics["top1"] == 0.5 == task.top1(scores, labels)
    assert metrics["confusion_matrix"]["rows_true_columns_predicted"] == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    assert metrics["per_class"]["b"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert task.clip_metrics(logits.numpy(), labels.numpy())["accuracy"] == 0.5
    assert task.shown(scores, {0: "a", 1: "b", 2: "c"}, 2)[1][0] == ["b", "a"]


def test_no_softmax_argmax_or_cross_entropy_outside_the_task_module():
    """The Viterbi path's argmax in timeline.py runs over path scores, not over a model's outputs.
    heads.py is a transformers model whose file travels in the output folder without this package
    (trust_remote_code): its forward's loss is the one transformers' own classifiers compute for their
    users; train.py's loss comes from task.py (VideoTrainer.compute_loss)."""
    found = []
    for path in sorted((REPO / "video_classifier").rglob("*.py")):
        if path.name in ("task.py", "heads.py"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#")[0]
            if re.search(r"\.softmax\(|\.sigmoid\(|cross_entropy\(|binary_cross_entropy|\.argmax\(", code) \
                    and "score.argmax()" not in code:
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert found == []


# --- Behaviour against independent computations (scikit-learn, torch, numpy from the definitions) ---

import math  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)
from sklearn.utils.class_weight import compute_class_weight  # noqa: E402
from transformers import TrainingArguments, VideoMAEConfig, VideoMAEForVideoClassification  # noqa: E402

from video_classifier.core.config import TrainConfig  # noqa: E402
from video_classifier.core.task import (  # noqa: E402
    LABEL_SEPARATOR,
    TASKS,
    MultiLabel,
    average_precisions,
    class_counts,
    join_labels,
    mean_average_precision,
    split_labels,
    task_for,
)
from video_classifier.data.preprocessing import PreprocessSpec  # noqa: E402
from video_classifier.model.model_spec import ModelSpec  # noqa: E402

LABEL2ID = {"a": 0, "b": 1, "c": 2}
# 8 videos' labels; class c has no positive (as a class a val or test split can lack)
MULTI = ["a|b", "a", "", "b", "a", "a|b", "a", ""]


def multi_hot(labels: list[str], label2id: dict[str, int] = LABEL2ID) -> np.ndarray:
    """(N, C) 0/1 from label strings, written here from the definition."""
    y = np.zeros((len(labels), len(label2id)), np.int64)
    for row, label in enumerate(labels):
        for name in filter(None, label.split("|")):
            y[row, label2id[name]] = 1
    return y


def random_logits(rows: int, classes: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, classes, generator=torch.Generator().manual_seed(seed)) * 2


def bce_from_definition(logits: torch.Tensor, y: np.ndarray, pos_weight: np.ndarray | None = None) -> float:
    """mean over rows and classes of -(w y log p + (1 - y) log(1 - p)), p = sigmoid, in numpy float64."""
    x = logits.double().numpy()
    p = 1 / (1 + np.exp(-x))
    w = np.ones(y.shape[1]) if pos_weight is None else pos_weight
    return float(np.mean(-(w * y * np.log(p) + (1 - y) * np.log(1 - p))))


def weighted_ce_from_definition(logits: torch.Tensor, y: np.ndarray, weight: np.ndarray) -> float:
    """sum_i w[y_i] (-log softmax(x_i)[y_i]) / sum_i w[y_i]: torch's weighted mean, from its definition."""
    x = logits.double().numpy()
    log_p = x - np.log(np.exp(x).sum(1, keepdims=True))
    nll = -log_p[np.arange(len(y)), y]
    return float((weight[y] * nll).sum() / weight[y].sum())


# (a) MultiLabel.loss takes pos_weight; train.class_weights: balanced reaches it


def test_multi_label_balanced_weights_are_torchs_pos_weight_negatives_over_positives():
    """pos_weight = negatives / positives per class from the training counts (1 where a class has none)."""
    y = multi_hot(MULTI)
    positives = y.sum(0)
    expected = np.where(positives > 0, (len(MULTI) - positives) / np.maximum(positives, 1), 1.0)
    weight = MultiLabel().class_weights(MULTI, LABEL2ID)
    assert weight.dtype == torch.float32 and weight.tolist() == pytest.approx(expected.tolist())
    assert weight.tolist() == pytest.approx([3 / 5, 5 / 3, 1.0])

    logits, targets = random_logits(8, 3), torch.from_numpy(y).float()
    ours = MultiLabel.loss(logits, targets, weight=weight)
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, targets, pos_weight=torch.tensor(expected, dtype=torch.float32))
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-6)
    assert ours.item() == pytest.approx(bce_from_definition(logits, y, expected), abs=1e-6)
    unweighted = MultiLabel.loss(logits, targets)
    assert unweighted.item() == pytest.approx(bce_from_definition(logits, y), abs=1e-6)
    assert abs(ours.item() - unweighted.item()) > 5e-3  # the weight changes the loss (tolerance: 1e-6)


def test_multi_label_smoothing_pulls_each_target_half_way_to_one_half():
    logits, y = random_logits(8, 3, seed=1), multi_hot(MULTI)
    smoothed = y * (1 - 0.2) + 0.2 / 2  # 1 -> 0.9, 0 -> 0.1
    ours = MultiLabel.loss(logits, torch.from_numpy(y), label_smoothing=0.2)  # int targets: taken as float
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(smoothed).float())
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-6)
    assert ours.dtype == torch.float32 and MultiLabel.loss(logits.half(), torch.from_numpy(y)).dtype == torch.float32


def multi_label_trainer(tmp_path, class_weights: torch.Tensor | None):
    """A VideoTrainer over a tiny multi-label VideoMAE, built as train() builds it; nothing trained."""
    torch.manual_seed(0)
    model = VideoMAEForVideoClassification(VideoMAEConfig(
        image_size=32, patch_size=16, num_frames=2, tubelet_size=2, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, num_labels=3, problem_type=MultiLabel.problem_type))
    with torch.no_grad():
        model.classifier.weight.mul_(50)  # logits of a few units: a weight then moves the loss visibly
    spec = ModelSpec("videomae", "pixel_values",
                     PreprocessSpec(2, 1, 32, (32, 32), (0.5,) * 3, (0.5,) * 3), {0: "a", 1: "b", 2: "c"},
                     MultiLabel())
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    from video_classifier.engine.trainer import VideoTrainer

    return model, spec, VideoTrainer(model=model, args=args, spec=spec, train_options=TrainConfig(),
                                     class_weights=class_weights)


def test_balanced_weights_reach_the_trainers_multi_label_loss(tmp_path):
    """VideoTrainer.compute_loss, in training, is BCE with pos_weight = the balanced class weights; in
    evaluation, the plain BCE."""
    weight = MultiLabel().class_weights(MULTI, LABEL2ID)
    model, spec, trainer = multi_label_trainer(tmp_path, weight)
    torch.manual_seed(1)
    clips = torch.randint(0, 256, (8, 2, 3, 32, 32), dtype=torch.uint8)
    targets = torch.from_numpy(multi_hot(MULTI)).float()
    inputs = {"pixel_values": clips, "labels": targets}
    model.train()
    with torch.no_grad():
        torch.manual_seed(2)
        loss = trainer.compute_loss(model, inputs)
        torch.manual_seed(2)  # the same dropout draws
        logits = model(pixel_values=spec.pixels(clips)).logits
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight)
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    assert abs(expected.item() - plain.item()) > 1e-2
    model.eval()
    with torch.no_grad():
        assert trainer.compute_loss(model, inputs).item() == pytest.approx(
            torch.nn.functional.binary_cross_entropy_with_logits(
                model(pixel_values=spec.pixels(clips)).logits, targets).item(), abs=1e-5)


# (b) mAP leaves out a class without a positive row, as scikit-learn's macro AP over the present classes


def test_map_leaves_out_a_class_without_positives():
    y = multi_hot(MULTI)  # class c: no positive row
    s = MultiLabel.scores(random_logits(8, 3, seed=3)).double().numpy()
    ap = average_precisions(s, y)
    assert math.isnan(ap[2])
    assert ap[:2].tolist() == pytest.approx([average_precision_score(y[:, c], s[:, c]) for c in range(2)])
    present = y.any(0)
    expected = average_precision_score(y[:, present], s[:, present], average="macro")
    assert mean_average_precision(ap) == pytest.approx(expected)
    assert mean_average_precision(ap) != pytest.approx(np.mean(np.nan_to_num(ap)))  # not counted as 0
    task = MultiLabel()
    targets = [task.target(label, LABEL2ID) for label in MULTI]
    assert task.headline(torch.from_numpy(s).float(), targets) == pytest.approx(expected, abs=1e-6)
    metrics = task.video_metrics(torch.from_numpy(s), targets, ["a", "b", "c"])
    assert metrics["mAP"] == pytest.approx(expected) and metrics["per_class"]["c"]["ap"] is None
    assert metrics["per_class"]["a"]["ap"] == pytest.approx(ap[0])
    clip = task.clip_metrics(random_logits(8, 3, seed=3).numpy(), y.astype(np.float32))
    assert clip["mAP"] == pytest.approx(expected, abs=1e-6)
    assert math.isnan(mean_average_precision(np.array([np.nan, np.nan])))


# (c) a score exactly at its threshold is predicted


def test_a_score_at_its_threshold_is_predicted():
    scores = torch.tensor([[0.25, 0.5, 0.75], [0.2499, 0.4999, 0.7499], [0.5, 0.5, 0.5]])
    fitted = MultiLabel((0.25, 0.5, 0.75))
    assert fitted.predicted(scores).tolist() == [[True, True, True], [False, False, False], [True, True, False]]
    assert MultiLabel().predicted(scores).tolist() == [[False, True, True], [False, False, True], [True, True, True]]
    assert [labels for labels, _ in fitted.shown(scores, {0: "a", 1: "b", 2: "c"}, 1)] == [
        ["c", "b", "a"], [], ["a", "b"]]
    targets = [torch.tensor(r) for r in ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0])]
    metrics = fitted.video_metrics(scores, targets, ["a", "b", "c"])
    assert metrics["at_thresholds_exact_match"] == 1.0  # each row's labels are exactly those at threshold
    assert metrics["per_class"]["c"]["recall"] == 1.0
    targets = [torch.tensor(r) for r in ([0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0])]
    assert MultiLabel().video_metrics(scores, targets, ["a", "b", "c"])["at_0.5_exact_match"] == 1.0
    assert MultiLabel().clip_metrics(np.zeros((2, 3), np.float32), np.ones((2, 3)))["micro_f1"] == 1.0  # 0.5


# (d) the single-label weighted loss


def test_single_label_weighted_loss_is_the_weighted_mean_of_cross_entropy():
    labels = ["a", "a", "a", "a", "b", "c"]
    y = np.array([LABEL2ID[label] for label in labels])
    weight = SingleLabel().class_weights(labels, LABEL2ID)
    assert weight.dtype == torch.float32
    assert weight.tolist() == pytest.approx(compute_class_weight("balanced", classes=np.arange(3), y=y).tolist())
    logits = random_logits(6, 3, seed=4)
    ours = SingleLabel.loss(logits, torch.from_numpy(y), weight=weight)
    assert ours.item() == pytest.approx(weighted_ce_from_definition(logits, y, weight.double().numpy()), abs=1e-6)
    assert abs(ours.item() - SingleLabel.loss(logits, torch.from_numpy(y)).item()) > 0.05
    # a class without training videos weighs 0 (scikit-learn's "balanced" refuses one); classes: the model's 3
    assert SingleLabel().class_weights(["a", "a", "b"], LABEL2ID).tolist() == pytest.approx([3 / (3 * 2), 3 / (3 * 1), 0.0])


def test_single_label_smoothing_is_torchs():
    logits, y = random_logits(6, 3, seed=5), torch.tensor([0, 1, 2, 2, 1, 0])
    x = logits.double().numpy()
    log_p = x - np.log(np.exp(x).sum(1, keepdims=True))
    # smoothing 0.3: target 0.7 on the label + 0.1 on every class
    soft = np.full((6, 3), 0.1)
    soft[np.arange(6), y.numpy()] += 0.7
    expected = float(np.mean(-(soft * log_p).sum(1)))
    assert SingleLabel.loss(logits, y, label_smoothing=0.3).item() == pytest.approx(expected, abs=1e-6)
    assert SingleLabel.loss(logits.half(), y).dtype == torch.float32


# The rest of the task, each against a computation written here


def test_single_label_scores_are_a_softmax_over_the_last_axis():
    logits = random_logits(6, 4, seed=6).view(2, 3, 4).double()
    scores = SingleLabel.scores(logits)
    x = logits.numpy()
    expected = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    assert scores.dtype == torch.float32 and np.allclose(scores.numpy(), expected, atol=1e-6)
    assert SingleLabel.predicted(scores).tolist() == x.argmax(-1).tolist()


def test_single_label_targets_and_ids():
    task = SingleLabel()
    assert task.target("b", LABEL2ID) == 1 and task.target("unknown", LABEL2ID) == -1
    assert task.label_ids("c", LABEL2ID) == [2]
    stacked = task.stack([2, 0, 1])
    assert stacked.dtype == torch.long and stacked.tolist() == [2, 0, 1]
    assert task.fitted(torch.zeros(1, 3), [0]) is task
    assert (task.name, task.problem_type, task.best_metric, task.headline_name) == (
        "single_label", "single_label_classification", "accuracy", "top1")
    assert TASKS == {"single_label": SingleLabel, "multi_label": MultiLabel}


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_single_label_video_metrics_are_scikit_learns():
    """7 classes, one without a video: top-5 (k = 5 < classes), mean class accuracy over the classes present."""
    generator = torch.Generator().manual_seed(7)
    scores = SingleLabel.scores(torch.randn(30, 7, generator=generator) * 2)
    y = torch.randint(0, 6, (30,), generator=generator).numpy()  # class 6: no video
    names = list("abcdefg")
    m = SingleLabel().video_metrics(scores, y.tolist(), names)
    predicted = scores.argmax(-1).numpy()
    ids = list(range(7))
    assert m["top1"] == pytest.approx(accuracy_score(y, predicted))
    assert m["top5"] == pytest.approx(top_k_accuracy_score(y, scores.numpy(), k=5, labels=ids))
    assert m["top5"] != pytest.approx(top_k_accuracy_score(y, scores.numpy(), k=6, labels=ids))
    assert m["mean_class_accuracy"] == pytest.approx(balanced_accuracy_score(y, predicted))
    assert m["confusion_matrix"] == {"labels": names,
                                     "rows_true_columns_predicted": confusion_matrix(y, predicted, labels=ids).tolist()}
    p, r, f, n = precision_recall_fscore_support(y, predicted, labels=ids, zero_division=0)
    assert list(m["per_class"]) == names
    for c, name in enumerate(names):
        assert m["per_class"][name] == pytest.approx({"precision": p[c], "recall": r[c], "f1": f[c],
                                                      "support": int(n[c])})
    assert m["per_class"]["g"]["support"] == 0
    three = SingleLabel().video_metrics(scores[:, :3].softmax(-1), np.minimum(y, 2).tolist(), names[:3])
    assert three["top5"] == 1.0  # top-k with k = min(5, classes): every label among 3 of 3


def test_single_label_clip_metrics_and_shown():
    generator = torch.Generator().manual_seed(8)
    logits, y = torch.randn(20, 4, generator=generator), torch.randint(0, 4, (20,), generator=generator).numpy()
    m = SingleLabel().clip_metrics(logits.numpy(), y)
    predicted = logits.numpy().argmax(-1)
    assert m == pytest.approx({"accuracy": accuracy_score(y, predicted),
                               "macro_f1": f1_score(y, predicted, average="macro", zero_division=0)})
    assert SingleLabel().headline(logits.softmax(-1), y.tolist()) == pytest.approx(accuracy_score(y, predicted))
    scores = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    shown = SingleLabel.shown(scores, {0: "a", 1: "b", 2: "c"}, 2)
    assert shown == [(["b", "c"], pytest.approx([0.6, 0.3])), (["a", "c"], pytest.approx([0.5, 0.3]))]
    assert [labels for labels, _ in SingleLabel.shown(scores, {0: "a", 1: "b", 2: "c"}, 9)] == [
        ["b", "c", "a"], ["a", "c", "b"]]  # top_k past the classes: all of them


def test_summaries_read_the_metrics():
    single = {"top1": 0.5, "top5": 0.875, "mean_class_accuracy": 0.25, "views": "5 clips x 3 crops", "videos": 8,
              "centre_view_top1": 0.375, "clip_top1": 0.125, "clips": 24}
    assert SingleLabel.summary(single) == (
        "video-level top-1 0.5000, top-5 0.8750, mean class accuracy 0.2500 (5 clips x 3 crops, 8 videos); "
        "1 clip x 1 crop 0.3750; clip-level top-1 0.1250 (24 clips)")
    multi = {"mAP": 0.5, "micro_mAP": 0.25, "at_0.5_micro_f1": 0.125, "at_0.5_exact_match": 0.0625,
             "views": "1 clip x 1 crop", "videos": 4, "centre_view_mAP": 0.75, "clip_mAP": 0.375, "clips": 9}
    assert MultiLabel.summary(multi) == (
        "video-level mAP 0.5000 (micro 0.2500), micro F1 0.1250 and exact match 0.0625 at 0.5 (1 clip x 1 crop, "
        "4 videos); 1 clip x 1 crop mAP 0.7500; clip-level mAP 0.3750 (9 clips)")
    multi.update({"at_thresholds_micro_f1": 0.875, "at_thresholds_exact_match": 0.5})
    assert "micro F1 0.8750 and exact match 0.5000 at thresholds (" in MultiLabel.summary(multi)


def test_label_strings():
    assert LABEL_SEPARATOR == "|"
    assert split_labels(" a | b ||c ") == ["a", "b", "c"] and split_labels("") == []
    assert join_labels(["b", "a", "b"]) == "a|b" and join_labels([]) == ""
    assert class_counts(SingleLabel(), ["a", "c", "a"], LABEL2ID).tolist() == [2, 0, 1]
    counts = class_counts(MultiLabel(), MULTI, LABEL2ID)
    assert counts.dtype == np.int64 and counts.tolist() == multi_hot(MULTI).sum(0).tolist()


def test_multi_label_targets_scores_and_ids():
    task = MultiLabel()
    assert task.target("c|a|unknown", LABEL2ID).tolist() == [1.0, 0.0, 1.0]  # a label not in the model dropped
    assert task.target("", LABEL2ID).tolist() == [0.0, 0.0, 0.0]
    assert task.label_ids("c|a", LABEL2ID) == [2, 0] and task.label_ids("", LABEL2ID) == []
    assert task.stack([]).shape == (0, 0)
    assert task.stack([torch.ones(3), torch.zeros(3)]).tolist() == [[1, 1, 1], [0, 0, 0]]
    logits = random_logits(4, 3, seed=9).double()
    scores = task.scores(logits)
    assert scores.dtype == torch.float32 and np.allclose(scores.numpy(), 1 / (1 + np.exp(-logits.numpy())))
    assert task.threshold_vector(3).tolist() == [0.5] * 3
    assert MultiLabel((0.1, 0.9)).threshold_vector(2).tolist() == pytest.approx([0.1, 0.9])
    assert (task.name, task.problem_type, task.best_metric, task.headline_name) == (
        "multi_label", "multi_label_classification", "mAP", "mAP")


def test_multi_label_top1_counts_rows_with_labels_only():
    scores = torch.tensor([[0.9, 0.1, 0.2], [0.2, 0.3, 0.8], [0.1, 0.7, 0.2], [0.5, 0.2, 0.1]])
    labels = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 1]])
    # rows with a label: 0 (top a, hit), 1 (top c, miss), 3 (top a, hit); row 2 left out
    assert MultiLabel().top1(scores, labels) == pytest.approx(2 / 3)
    assert math.isnan(MultiLabel().top1(scores, torch.zeros(4, 3)))


def test_multi_label_video_metrics_are_scikit_learns():
    generator = torch.Generator().manual_seed(10)
    y = multi_hot(MULTI)
    scores = MultiLabel.scores(torch.randn(8, 3, generator=generator) * 2)
    targets = [torch.from_numpy(row).float() for row in y]
    s = scores.double().numpy()
    fitted = MultiLabel((0.3, 0.6, 0.45))
    m = fitted.video_metrics(scores, targets, ["a", "b", "c"])
    assert m["micro_mAP"] == pytest.approx(average_precision_score(y.ravel(), s.ravel()))
    assert m["videos_without_labels"] == 2
    assert m["top1"] == MultiLabel().top1(scores, torch.from_numpy(y))
    for prefix, predicted in (("at_0.5", (s >= 0.5).astype(int)), ("at_thresholds", (s >= [0.3, 0.6, 0.45]).astype(int))):
        p, r, f, _ = precision_recall_fscore_support(y, predicted, average="micro", zero_division=0)
        assert m[f"{prefix}_micro_f1"] == pytest.approx(f)
        assert m[f"{prefix}_micro_precision"] == pytest.approx(p) and m[f"{prefix}_micro_recall"] == pytest.approx(r)
        assert m[f"{prefix}_macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro", zero_division=0))
        assert m[f"{prefix}_exact_match"] == pytest.approx(accuracy_score(y, predicted))  # subset accuracy
    predicted = (s >= [0.3, 0.6, 0.45]).astype(int)
    p, r, f, n = precision_recall_fscore_support(y, predicted, zero_division=0)
    for c, name in enumerate("abc"):
        assert m["per_class"][name] == pytest.approx({"ap": m["per_class"][name]["ap"], "precision": p[c],
                                                      "recall": r[c], "f1": f[c], "support": int(n[c]),
                                                      "threshold": (0.3, 0.6, 0.45)[c]})
    plain = MultiLabel().video_metrics(scores, targets, ["a", "b", "c"])
    assert not any(k.startswith("at_thresholds") for k in plain)
    assert [plain["per_class"][n]["threshold"] for n in "abc"] == [0.5] * 3
    none = MultiLabel().video_metrics(scores[:2], [torch.zeros(3)] * 2, ["a", "b", "c"])
    assert math.isnan(none["mAP"]) and math.isnan(none["micro_mAP"])


def best_threshold_by_search(s: np.ndarray, y: np.ndarray) -> float:
    """The threshold of best F1 (the highest of equally good ones), at the midpoint between the scores
    either side of the cut, by trying every cut: F1 = 2 TP / (2 TP + FP + FN) of s >= t for each candidate t."""
    if not y.any():
        return 0.5
    distinct = sorted(set(s.tolist()), reverse=True)
    candidates = [(hi + lo) / 2 for hi, lo in zip(distinct, distinct[1:] + [0.0])]
    f1 = []
    for t in candidates:
        tp, fp, fn = (y & (s >= t)).sum(), (~y & (s >= t)).sum(), (y & (s < t)).sum()
        f1.append(2 * tp / (2 * tp + fp + fn))
    return round(candidates[int(np.argmax(f1))], 6)


def test_thresholds_chosen_on_val_are_those_of_best_f1():
    generator = np.random.default_rng(11)
    for trial in range(30):
        rows = int(generator.integers(2, 12))
        s = np.round(generator.random((rows, 4)), 1)  # rounded: ties between videos
        y = generator.random((rows, 4)) < 0.4
        y[:, 3] = False  # a class without a positive in val: 0.5
        chosen = MultiLabel.choose_thresholds(torch.from_numpy(s), [torch.from_numpy(r).float() for r in y])
        assert chosen == pytest.approx(tuple(best_threshold_by_search(s[:, c], y[:, c]) for c in range(4))), trial
    # one class, scores 0.9 (positive), 0.8 (negative), 0.4 (positive): predicting all (F1 0.8) beats the
    # first alone (0.67); the cut below the lowest score is half-way to 0
    s = torch.tensor([[0.9], [0.8], [0.4]])
    assert MultiLabel.choose_thresholds(s, [torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([1.0])]) == (0.2,)
    fitted = MultiLabel().fitted(s, [torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([1.0])])
    assert fitted == MultiLabel((0.2,))


def test_the_task_of_a_saved_model():
    assert task_for(SimpleNamespace()) == SingleLabel()
    assert task_for(SimpleNamespace(problem_type="single_label_classification")) == SingleLabel()
    multi = SimpleNamespace(problem_type="multi_label_classification", id2label={"0": "a", "1": "b", "2": "c"})
    assert task_for(multi) == MultiLabel()
    multi.label_thresholds = {"c": 0.25, "a": 0.75}  # b: none saved, 0.5
    assert task_for(multi) == MultiLabel((0.75, 0.5, 0.25))


# Edges the mutation run (make mutate) found untested


@pytest.mark.filterwarnings("error")  # an undefined ratio is 0 by choice, without scikit-learn's warning
def test_undefined_f1_parts_are_zero_without_a_warning():
    """No video predicted: micro precision 0/0 is 0; a class with neither a positive nor a prediction has
    F1 0/0, 0 in the macro mean: scikit-learn's zero_division=0."""
    y = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]])
    scores = torch.full((4, 3), 0.1)
    m = MultiLabel().video_metrics(scores, [torch.from_numpy(r).float() for r in y], ["a", "b", "c"])
    assert (m["at_0.5_micro_precision"], m["at_0.5_micro_recall"], m["at_0.5_micro_f1"]) == (0.0, 0.0, 0.0)
    assert m["per_class"]["c"] == pytest.approx({"ap": None, "precision": 0.0, "recall": 0.0, "f1": 0.0,
                                                 "support": 0, "threshold": 0.5})
    predicted = np.array([[1, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]])  # class c: no positive, none predicted
    s = torch.from_numpy(predicted * 0.8 + 0.1)
    m = MultiLabel().video_metrics(s, [torch.from_numpy(r).float() for r in y], ["a", "b", "c"])
    assert m["at_0.5_macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)  # c counts as 0
    assert m["at_0.5_macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro", zero_division=0))
    assert m["at_0.5_exact_match"] == 0.75  # rows, not elements: row 1 misses a


def test_a_class_with_one_positive_weighs_its_negatives():
    weight = MultiLabel().class_weights(["a", "b", "b", "", "b|c"], LABEL2ID)  # c: 1 positive of 5
    assert weight.tolist() == pytest.approx([4 / 1, 2 / 3, 4 / 1])


def test_thresholds_are_kept_to_6_decimals():
    s = torch.tensor([[0.1234567], [0.0000002]], dtype=torch.float64)
    chosen = MultiLabel.choose_thresholds(s, [torch.tensor([1.0]), torch.tensor([0.0])])
    assert chosen == (round((0.1234567 + 0.0000002) / 2, 6),) == (0.061728,)


def test_predicted_takes_any_leading_shape_and_device():
    scores = torch.rand(2, 5, 3, generator=torch.Generator().manual_seed(12))
    assert torch.equal(MultiLabel().predicted(scores), scores >= 0.5)  # (..., classes): 5 rows of 3
    assert torch.equal(MultiLabel().predicted(scores[0]), scores[0] >= 0.5)
    on_meta = MultiLabel((0.2, 0.4, 0.6)).predicted(torch.empty(4, 3, device="meta"))
    assert on_meta.device.type == "meta" and on_meta.shape == (4, 3)  # thresholds follow the scores' device
    logits = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(13))
    assert torch.allclose(SingleLabel.scores(logits), logits.softmax(-1))


@pytest.mark.filterwarnings("error")
def test_map_of_no_class_is_nan_without_a_warning():
    assert math.isnan(mean_average_precision(np.array([np.nan, np.nan])))
    assert mean_average_precision(np.array([np.nan, 0.5, 0.25])) == 0.375


@pytest.mark.filterwarnings("error")
def test_single_label_metrics_list_every_class_even_one_never_seen_nor_predicted():
    """4 classes; d neither true nor predicted, c true once; b never predicted (its precision 0, silently)."""
    names = ["a", "b", "c", "d"]
    y = [0, 0, 1, 2, 0, 1]
    scores = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.6, 0.2, 0.1, 0.1], [0.5, 0.3, 0.2, 0.0],
                           [0.1, 0.2, 0.7, 0.0], [0.2, 0.1, 0.7, 0.0], [0.8, 0.1, 0.1, 0.0]])
    m = SingleLabel().video_metrics(scores, y, names)
    assert m["confusion_matrix"]["rows_true_columns_predicted"] == [[2, 0, 1, 0], [2, 0, 0, 0], [0, 0, 1, 0],
                                                                    [0, 0, 0, 0]]
    assert list(m["per_class"]) == names and m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                                                     "support": 0}
    assert m["per_class"]["b"]["precision"] == 0.0 and m["per_class"]["c"]["support"] == 1
    # mean class accuracy over the classes with a video: a 2/3, b 0, c 1 (one video)
    assert m["mean_class_accuracy"] == pytest.approx((2 / 3 + 0 + 1) / 3)
