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

MARGIN = 1e-3  # how far under the lowest accepted known score a threshold is placed


def max_probability(probs: torch.Tensor) -> torch.Tensor:
    """(videos, classes) scores -> (videos,) the top score."""
    return probs.max(-1).values


def energy(view_logits: torch.Tensor) -> torch.Tensor:
    """(videos, views, classes) logits -> (videos,) the negative energy, logsumexp over the classes, averaged
    over the views."""
    return torch.logsumexp(view_logits.double(), -1).mean(-1)


def accept_threshold(known: torch.Tensor | np.ndarray, accept: float) -> float:
    """A threshold with at least `accept` of the `known` scores at or above it: just under the k-th lowest
    score, k = floor((1 - accept) x n) (so at most k of the known videos fall below it), by MARGIN or half-way
    to the next lower score where that is nearer, so that the same video scored again (another batch,
    another kernel: differences of about 1e-6) stays on its side."""
    scores = np.sort(np.asarray(known, dtype=np.float64))
    if not len(scores):
        raise ValueError("no known scores to choose a threshold on")
    below = min(math.floor((1 - accept) * len(scores) + 1e-9), len(scores) - 1)
    gap = scores[below] - scores[below - 1] if below else np.inf
    return float(scores[below] - min(MARGIN, gap / 2))


def auroc(known: torch.Tensor | np.ndarray, unknown: torch.Tensor | np.ndarray) -> float:
    """Area under the ROC curve of telling known (positive) from unknown videos by the score."""
    known, unknown = np.asarray(known, np.float64), np.asarray(unknown, np.float64)
    y = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
    return float(roc_auc_score(y, np.r_[known, unknown]))


def rejected_at(known: torch.Tensor | np.ndarray, unknown: torch.Tensor | np.ndarray, accept: float = 0.95) -> float:
    """The share of `unknown` scores below the threshold that accepts `accept` of the `known` ones."""
    threshold = accept_threshold(known, accept)
    return float((np.asarray(unknown, np.float64) < threshold).mean())
