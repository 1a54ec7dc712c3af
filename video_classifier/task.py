"""What a label means, owned in one place: scores from logits, the loss, the metrics, how a prediction
reads.

A run's task is chosen once (`task_for`) and handed to training, evaluation, inference, the timeline
and export; nothing else applies a softmax, an argmax or a cross-entropy. `SingleLabel`: one class per
video, softmax scores (several views of a video averaged), cross-entropy (label smoothing; the soft
targets of mixup and cutmix), top-1 / top-5 / mean class accuracy / per-class precision, recall, F1 and
the confusion matrix, computed with scikit-learn (no Hub access at run time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


@dataclass(frozen=True)
class SingleLabel:
    """One class per video."""

    name = "single_label"

    @staticmethod
    def scores(logits: torch.Tensor) -> torch.Tensor:
        """(..., classes) logits -> probabilities that sum to 1 over the classes."""
        return logits.float().softmax(-1)

    @staticmethod
    def loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """Mean cross-entropy of (B, classes) logits against class ids (B,) or soft targets (B, classes)."""
        return torch.nn.functional.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)

    @staticmethod
    def predicted(scores: torch.Tensor) -> torch.Tensor:
        """The class id each row of scores picks."""
        return scores.argmax(-1)

    def top1(self, scores: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of rows whose picked class is the label."""
        return float((self.predicted(scores) == labels).float().mean())

    def clip_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """The Trainer's per-evaluation metrics (compute_metrics): clip-level accuracy and macro F1."""
        predicted = np.argmax(logits, axis=-1)
        return {"accuracy": float(accuracy_score(labels, predicted)),
                "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0))}

    def video_metrics(self, scores: torch.Tensor, labels: list[int], class_names: list[str]) -> dict[str, Any]:
        """Top-1, top-5, mean class accuracy, per-class precision/recall/F1/support and the confusion matrix."""
        y = np.asarray(labels)
        predicted = self.predicted(scores).numpy()
        k = min(5, scores.shape[1])
        top5 = (scores.topk(k, dim=-1).indices.numpy() == y[:, None]).any(1)
        ids = list(range(len(class_names)))
        matrix = confusion_matrix(y, predicted, labels=ids)
        precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=ids, zero_division=0)
        return {
            "top1": float((predicted == y).mean()),
            "top5": float(top5.mean()),  # top-k with k = min(5, classes)
            "mean_class_accuracy": float(recall[support > 0].mean()),  # recall averaged over the classes present
            "per_class": {
                name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
            },
            "confusion_matrix": {"labels": class_names, "rows_true_columns_predicted": matrix.tolist()},
        }

    @staticmethod
    def shown(scores: torch.Tensor, id2label: dict[int, str], top_k: int) -> list[tuple[list[str], list[float]]]:
        """What a prediction prints, per row: the `top_k` labels and their scores, best first."""
        values, ids = scores.topk(min(top_k, scores.shape[-1]), dim=-1)
        return [([id2label[i] for i in row_ids], row_values)
                for row_ids, row_values in zip(ids.tolist(), values.tolist())]


Task = SingleLabel


def task_for(model_config: Any) -> Task:
    """The task of a model, from its config: single-label (the only one so far)."""
    return SingleLabel()
