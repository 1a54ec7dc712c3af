"""What a label means, owned in one place: scores from logits, the loss, the metrics, how a prediction
reads.

A run's task is chosen once (`task_for`, from the model's config) and handed to training, evaluation,
inference, the timeline and export; nothing else applies a softmax, a sigmoid, an argmax or a loss.
`SingleLabel`: one class per video, softmax scores (several views of a video averaged), cross-entropy
(label smoothing; the soft targets of mixup and cutmix), top-1 / top-5 / mean class accuracy /
per-class precision, recall, F1 and the confusion matrix. `MultiLabel`: any number of classes per
video, sigmoid scores, binary cross-entropy, mAP and F1 at 0.5 and at per-class thresholds chosen on
val. Metrics come from scikit-learn (no Hub access at run time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch


def _sklearn() -> Any:
    """scikit-learn's metrics, imported on first use: about 0.9 s that a script which fails early (a Hub that
    does not answer, a bad config) need not spend."""
    import sklearn.metrics

    return sklearn.metrics


@dataclass(frozen=True)
class SingleLabel:
    """One class per video."""

    name = "single_label"
    problem_type = "single_label_classification"
    best_metric = "accuracy"  # the Trainer's metric_for_best_model

    @staticmethod
    def scores(logits: torch.Tensor) -> torch.Tensor:
        """(..., classes) logits -> probabilities that sum to 1 over the classes."""
        return logits.float().softmax(-1)

    @staticmethod
    def target(label: str, label2id: dict[str, int]) -> int:
        """A record's label -> its class id (-1: a label the model does not know, e.g. a video to infer)."""
        return label2id.get(label, -1)

    @staticmethod
    def stack(targets: list[Any]) -> torch.Tensor:
        return torch.tensor(targets, dtype=torch.long)

    @staticmethod
    def label_ids(label: str, label2id: dict[str, int]) -> list[int]:
        """The class ids a record's label names."""
        return [label2id[label]]

    def class_weights(self, labels: list[str], label2id: dict[str, int]) -> torch.Tensor:
        """"balanced": class c weighs videos / (classes x videos of c), scikit-learn's "balanced", so every
        class adds the same to the loss in an epoch (0 for a class without training videos)."""
        counts = class_counts(self, labels, label2id).astype(np.float64)
        weights = np.where(counts > 0, len(labels) / (len(counts) * np.maximum(counts, 1)), 0.0)
        return torch.tensor(weights, dtype=torch.float32)

    @staticmethod
    def loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0,
             weight: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy of (B, classes) logits against class ids (B,) or soft targets (B, classes);
        with `weight` (classes,), the weighted mean, as torch's cross_entropy takes it."""
        return torch.nn.functional.cross_entropy(logits.float(), targets, weight=weight,
                                                 label_smoothing=label_smoothing)

    @staticmethod
    def predicted(scores: torch.Tensor) -> torch.Tensor:
        """The class id each row of scores picks."""
        return scores.argmax(-1)

    def top1(self, scores: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of rows whose picked class is the label."""
        return float((self.predicted(scores) == labels).float().mean())

    headline_name = "top1"  # the one number of a set of videos or clips: metrics.json's <view>_top1

    def headline(self, scores: torch.Tensor, targets: list[Any]) -> float:
        return self.top1(scores, self.stack(targets))

    def fitted(self, scores: torch.Tensor, targets: list[Any]) -> "SingleLabel":
        """The task with whatever it chooses on val: nothing for one label per video."""
        return self

    @staticmethod
    def summary(m: dict[str, Any]) -> str:
        """A split's video-level metrics in a line."""
        return (f"video-level top-1 {m['top1']:.4f}, top-5 {m['top5']:.4f}, mean class accuracy "
                f"{m['mean_class_accuracy']:.4f} ({m['views']}, {m['videos']} videos); 1 clip x 1 crop "
                f"{m['centre_view_top1']:.4f}; clip-level top-1 {m['clip_top1']:.4f} ({m['clips']} clips)")

    def clip_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """The Trainer's per-evaluation metrics (compute_metrics): clip-level accuracy and macro F1."""
        predicted = np.argmax(logits, axis=-1)
        return {"accuracy": float(_sklearn().accuracy_score(labels, predicted)),
                "macro_f1": float(_sklearn().f1_score(labels, predicted, average="macro", zero_division=0))}

    def video_metrics(self, scores: torch.Tensor, labels: list[int], class_names: list[str]) -> dict[str, Any]:
        """Top-1, top-5, mean class accuracy, per-class precision/recall/F1/support and the confusion matrix."""
        y = np.asarray(labels)
        predicted = self.predicted(scores).numpy()
        k = min(5, scores.shape[1])
        top5 = (scores.topk(k, dim=-1).indices.numpy() == y[:, None]).any(1)
        ids = list(range(len(class_names)))
        matrix = _sklearn().confusion_matrix(y, predicted, labels=ids)
        precision, recall, f1, support = _sklearn().precision_recall_fscore_support(y, predicted, labels=ids,
                                                                                    zero_division=0)
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


# Several labels of one video are kept in one string, joined by this (manifest.csv's label column; a
# list's `labels` column); "" is a video with none.
LABEL_SEPARATOR = "|"


def split_labels(label: str) -> list[str]:
    """The labels of a record's label string ("" -> none)."""
    return [part for part in (p.strip() for p in label.split(LABEL_SEPARATOR)) if part]


def join_labels(labels: list[str]) -> str:
    return LABEL_SEPARATOR.join(sorted(set(labels)))


def _f1_at(y: np.ndarray, predicted: np.ndarray, prefix: str) -> dict[str, float]:
    """Micro and macro F1, micro precision and recall, and the exact-match ratio of (N, C) 0/1 arrays."""
    precision, recall, f1, _ = _sklearn().precision_recall_fscore_support(y, predicted, average="micro",
                                                                        zero_division=0)
    macro = _sklearn().f1_score(y, predicted, average="macro", zero_division=0)
    return {f"{prefix}_micro_f1": float(f1), f"{prefix}_macro_f1": float(macro),
            f"{prefix}_micro_precision": float(precision), f"{prefix}_micro_recall": float(recall),
            f"{prefix}_exact_match": float((predicted == y).all(1).mean())}


def average_precisions(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each class's average precision over the rows (scikit-learn's average_precision_score of its column);
    NaN for a class without a positive row, whose AP is undefined (scikit-learn warns and gives 0)."""
    return np.array([_sklearn().average_precision_score(y[:, c], scores[:, c]) if y[:, c].any() else np.nan
                     for c in range(y.shape[1])])


def mean_average_precision(ap: np.ndarray) -> float:
    """Macro mAP: the mean of average_precisions over the classes that have one (NaN where none has). A
    class without a positive row is left out, not counted as 0: this is scikit-learn's
    average_precision_score(y[:, present], s[:, present], average="macro") over the classes present, where
    its macro over every column would count an absent class as 0 and fall with each class a split lacks."""
    return float(np.nanmean(ap)) if not np.isnan(ap).all() else float("nan")


@dataclass(frozen=True)
class MultiLabel:
    """Any number of classes per video (none too): a sigmoid score per class, binary cross-entropy, and a
    class predicted where its score reaches its threshold (0.5 until thresholds are chosen on val)."""

    thresholds: tuple[float, ...] | None = None  # per class id; chosen on val (choose_thresholds)
    name = "multi_label"
    problem_type = "multi_label_classification"  # in config.json: the stock pipeline then applies a sigmoid
    best_metric = "mAP"  # the Trainer's metric_for_best_model

    @staticmethod
    def scores(logits: torch.Tensor) -> torch.Tensor:
        """(..., classes) logits -> an independent probability per class."""
        return logits.float().sigmoid()

    @staticmethod
    def target(label: str, label2id: dict[str, int]) -> torch.Tensor:
        """A record's label string -> a multi-hot (classes,) float vector (labels not in label2id dropped)."""
        hot = torch.zeros(len(label2id))
        for name in split_labels(label):
            if name in label2id:
                hot[label2id[name]] = 1.0
        return hot

    @staticmethod
    def stack(targets: list[Any]) -> torch.Tensor:
        return torch.stack(targets) if targets else torch.empty(0, 0)

    @staticmethod
    def label_ids(label: str, label2id: dict[str, int]) -> list[int]:
        """The class ids a record's label string names (none for "")."""
        return [label2id[name] for name in split_labels(label)]

    def class_weights(self, labels: list[str], label2id: dict[str, int]) -> torch.Tensor:
        """"balanced": each class's positives weigh as much as its negatives (BCE's pos_weight =
        negatives / positives, from the training counts; 1 for a class without positives)."""
        counts = class_counts(self, labels, label2id).astype(np.float64)
        weights = np.where(counts > 0, (len(labels) - counts) / np.maximum(counts, 1), 1.0)
        return torch.tensor(weights, dtype=torch.float32)

    @staticmethod
    def loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0,
             weight: torch.Tensor | None = None) -> torch.Tensor:
        """Mean binary cross-entropy over videos and classes of (B, classes) logits against multi-hot
        targets; smoothing pulls each target towards 1/2; `weight`: each class's positive weight."""
        targets = targets.float() * (1 - label_smoothing) + label_smoothing / 2
        return torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), targets, pos_weight=weight)

    def threshold_vector(self, classes: int) -> torch.Tensor:
        return torch.tensor(self.thresholds if self.thresholds is not None else [0.5] * classes)

    def predicted(self, scores: torch.Tensor) -> torch.Tensor:
        """(..., classes) bool: the classes whose score reaches their threshold."""
        return scores >= self.threshold_vector(scores.shape[-1]).to(scores.device)

    def exact_match(self, scores: torch.Tensor, targets: list[Any]) -> float:
        """Share of rows whose labels at their thresholds are exactly the row's labels."""
        return float((self.predicted(scores) == (self.stack(targets) > 0.5)).all(-1).float().mean())

    def top1(self, scores: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of rows whose top-scored class is one of their labels (rows with none left out)."""
        has = labels.bool().any(-1)
        if not has.any():
            return float("nan")
        best = scores[has].max(-1, keepdim=True).indices
        return float(labels[has].gather(-1, best).float().mean())

    headline_name = "mAP"

    def headline(self, scores: torch.Tensor, targets: list[Any]) -> float:
        """Macro mAP over the classes with a positive row."""
        return mean_average_precision(average_precisions(scores.double().numpy(), self.stack(targets).numpy() > 0.5))

    def fitted(self, scores: torch.Tensor, targets: list[Any]) -> "MultiLabel":
        """The task with per-class thresholds chosen on these (val) scores."""
        return MultiLabel(self.choose_thresholds(scores, targets))

    @staticmethod
    def summary(m: dict[str, Any]) -> str:
        at = "at_thresholds" if "at_thresholds_micro_f1" in m else "at_0.5"
        return (f"video-level mAP {m['mAP']:.4f} (micro {m['micro_mAP']:.4f}), micro F1 {m[at + '_micro_f1']:.4f} "
                f"and exact match {m[at + '_exact_match']:.4f} {at.replace('_', ' ')} ({m['views']}, {m['videos']} "
                f"videos); 1 clip x 1 crop mAP {m['centre_view_mAP']:.4f}; clip-level mAP {m['clip_mAP']:.4f} "
                f"({m['clips']} clips)")

    def clip_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """The Trainer's per-evaluation metrics: clip-level mAP (macro, over classes with a positive clip)
        and micro F1 at 0.5."""
        y = (np.asarray(labels) > 0.5).astype(np.int64)
        scores = self.scores(torch.from_numpy(np.asarray(logits))).double().numpy()
        return {"mAP": mean_average_precision(average_precisions(scores, y)),
                "micro_f1": _f1_at(y, (scores >= 0.5).astype(np.int64), "at_0.5")["at_0.5_micro_f1"]}

    @staticmethod
    def choose_thresholds(scores: torch.Tensor, labels: list[torch.Tensor]) -> tuple[float, ...]:
        """Per class, the threshold on val that maximises the class's F1 (the highest of equally good ones,
        at the midpoint between the scores either side of the cut, so it does not sit on a val video's
        score); 0.5 for a class without a positive video in val. One sort per class: a cut below the
        k-th highest score predicts k videos, and F1 = 2 TP / (k + positives)."""
        s, y = scores.double().numpy(), torch.stack(labels).numpy() > 0.5
        chosen = []
        for c in range(s.shape[1]):
            if not y[:, c].any():
                chosen.append(0.5)
                continue
            order = np.argsort(-s[:, c], kind="stable")
            ranked, hits = s[order, c], y[order, c]
            f1 = 2 * np.cumsum(hits) / (np.arange(1, len(ranked) + 1) + hits.sum())
            f1[:-1][ranked[:-1] == ranked[1:]] = -1  # a cut inside a run of equal scores is not a threshold
            best = int(np.argmax(f1))
            below = ranked[best + 1] if best + 1 < len(ranked) else 0.0
            chosen.append(round(float((ranked[best] + below) / 2), 6))
        return tuple(chosen)

    def video_metrics(self, scores: torch.Tensor, labels: list[torch.Tensor], class_names: list[str]
                      ) -> dict[str, Any]:
        """mAP (macro over the classes with a positive video, and micro), per-class AP, precision, recall,
        F1 and support; micro/macro F1, micro precision and recall and the exact-match ratio at 0.5 and,
        once chosen on val, at the per-class thresholds."""
        s, y = scores.double().numpy(), torch.stack(labels).numpy().astype(np.int64)
        ap = average_precisions(s, y)
        out: dict[str, Any] = {
            "mAP": mean_average_precision(ap),
            "micro_mAP": float(_sklearn().average_precision_score(y.ravel(), s.ravel())) if y.any() else float("nan"),
            "top1": self.top1(scores, torch.from_numpy(y)),  # top-scored class among the labels
            "videos_without_labels": int((y.sum(1) == 0).sum()),
        }
        out.update(_f1_at(y, (s >= 0.5).astype(np.int64), "at_0.5"))
        thresholds = self.threshold_vector(len(class_names)).numpy()
        predicted = (s >= thresholds).astype(np.int64)
        if self.thresholds is not None:
            out.update(_f1_at(y, predicted, "at_thresholds"))
        precision, recall, f1, support = _sklearn().precision_recall_fscore_support(y, predicted, zero_division=0)
        out["per_class"] = {
            name: {"ap": None if np.isnan(a) else float(a), "precision": float(p), "recall": float(r),
                   "f1": float(f), "support": int(n), "threshold": float(t)}
            for name, a, p, r, f, n, t in zip(class_names, ap, precision, recall, f1, support, thresholds)
        }
        return out

    def shown(self, scores: torch.Tensor, id2label: dict[int, str], top_k: int
              ) -> list[tuple[list[str], list[float]]]:
        """What a prediction prints, per row: the labels whose score reaches their threshold, best first
        (`top_k` does not cut them: a video has as many labels as it has)."""
        above = self.predicted(scores)
        out = []
        for row, keep in zip(scores.tolist(), above.tolist()):
            ids = sorted((i for i, k in enumerate(keep) if k), key=lambda i: -row[i])
            out.append(([id2label[i] for i in ids], [row[i] for i in ids]))
        return out


Task = Union[SingleLabel, MultiLabel]


def class_counts(task: Task, labels: list[str], label2id: dict[str, int]) -> np.ndarray:
    """Videos per class among `labels` (records' label strings; a multi-label video counts under each of
    its labels)."""
    return np.bincount([i for label in labels for i in task.label_ids(label, label2id)],
                       minlength=len(label2id)).astype(np.int64)
TASKS = {SingleLabel.name: SingleLabel, MultiLabel.name: MultiLabel}


def task_for(model_config: Any) -> Task:
    """The task of a model, from its config: multi-label where problem_type says so (its per-class
    thresholds in `label_thresholds`, by label), else single-label."""
    if getattr(model_config, "problem_type", None) != MultiLabel.problem_type:
        return SingleLabel()
    by_label = getattr(model_config, "label_thresholds", None)
    if not by_label:
        return MultiLabel()
    id2label = {int(i): label for i, label in model_config.id2label.items()}
    return MultiLabel(tuple(float(by_label.get(id2label[i], 0.5)) for i in range(len(id2label))))
