"""task.py owns what a label means: scores, loss, metrics; nothing else in the package applies them."""

from __future__ import annotations

import re

import torch

from conftest import REPO
from video_classifier.task import SingleLabel


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
    for path in sorted((REPO / "video_classifier").glob("*.py")):
        if path.name in ("task.py", "heads.py"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#")[0]
            if re.search(r"\.softmax\(|\.sigmoid\(|cross_entropy\(|binary_cross_entropy|\.argmax\(", code) \
                    and "score.argmax()" not in code:
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert found == []
