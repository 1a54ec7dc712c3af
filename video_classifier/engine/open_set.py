""""None of these": scores that say how much a video looks like any known class, the threshold that lets a
stated share of known videos through, and how well a score keeps videos of unknown classes out.

Two scores, higher meaning more known. The maximum softmax probability (Hendrycks & Gimpel, ICLR 2017): the
video's top calibrated score, its views' softmax averaged as evaluation averages it. The energy score (Liu
et al., NeurIPS 2020): -E(x) = logsumexp of the logits (at temperature 1 of the calibrated, folded model),
averaged over the video's views. bench/untrimmed.py measures both on classes held out of training; the
threshold training keeps (model/unknown.py) is on the first, which needs nothing but the scores every
consumer already has.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import roc_auc_score


def max_probability(probs: torch.Tensor) -> torch.Tensor:
    """(videos, classes) scores -> (videos,) the top score."""
    return probs.max(-1).values


def energy(view_logits: torch.Tensor) -> torch.Tensor:
    """(videos, views, classes) logits -> (videos,) the negative energy, logsumexp over the classes, averaged
    over the views."""
    return torch.logsumexp(view_logits.double(), -1).mean(-1)


def accept_threshold(known: torch.Tensor | np.ndarray, accept: float) -> float:
    """The highest threshold t with at least `accept` of the `known` scores >= t: the k-th lowest score, k =
    floor((1 - accept) x n), so that at most that many of the known videos fall below it."""
    scores = np.sort(np.asarray(known, dtype=np.float64))
    if not len(scores):
        raise ValueError("no known scores to choose a threshold on")
    below = math.floor((1 - accept) * len(scores) + 1e-9)
    return float(scores[min(below, len(scores) - 1)])


def auroc(known: torch.Tensor | np.ndarray, unknown: torch.Tensor | np.ndarray) -> float:
    """Area under the ROC curve of telling known (positive) from unknown videos by the score."""
    known, unknown = np.asarray(known, np.float64), np.asarray(unknown, np.float64)
    y = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
    return float(roc_auc_score(y, np.r_[known, unknown]))


def rejected_at(known: torch.Tensor | np.ndarray, unknown: torch.Tensor | np.ndarray, accept: float = 0.95) -> float:
    """The share of `unknown` scores below the threshold that accepts `accept` of the `known` ones."""
    threshold = accept_threshold(known, accept)
    return float((np.asarray(unknown, np.float64) < threshold).mean())
