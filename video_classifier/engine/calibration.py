"""Calibrated scores for a single-label model: a temperature fitted on val (Guo et al., ICML 2017) and the
expected calibration error it is judged by.

The temperature divides the classifier's logits (training folds it in, model/folding.py), so what it
calibrates is each view's softmax: the one score every consumer computes from the model, before a video's
views are averaged (evaluation, infer.py) or a window stands alone (the timeline, the live tab, the stock
pipeline's single view). It is fitted on those: the T in [0.05, 20] that minimises the negative
log-likelihood of every val view against its video's label (a grid over log T, then a finer one around its
best). Dividing a view's logits by T gives softmax(log p / T) from its probabilities p (the log-sum-exp
cancels), so T is fitted on the scores evaluation already has, without running the model again. ECE is
reported for the views (what T calibrates) and for the videos' averaged scores (an average of calibrated
views that disagree is less sure than its views: the video-level ECE after need not fall). Multi-label
models are not calibrated here (their per-class thresholds are chosen on val).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.task import SingleLabel

ECE_BINS = 15
LOG_RANGE = (np.log(0.05), np.log(20.0))


def rescaled(view_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """(..., classes) probabilities as the model would give them with its logits divided by `temperature`."""
    return SingleLabel.scores(view_probs.double().clamp_min(1e-300).log() / temperature)


def video_probs(view_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """(videos, views, classes) -> (videos, classes): the views' rescaled scores averaged."""
    return rescaled(view_probs, temperature).mean(1)


def each_view(view_probs: torch.Tensor, labels: list[int]) -> tuple[torch.Tensor, list[int]]:
    """(videos, views, classes) and the videos' labels -> (videos x views, classes) and each view's label."""
    videos, views, classes = view_probs.shape
    return view_probs.reshape(videos * views, classes), [label for label in labels for _ in range(views)]


def nll(view_probs: torch.Tensor, labels: list[int], temperature: float) -> float:
    """The mean negative log-likelihood of every view's rescaled scores against its video's label."""
    probs, view_labels = each_view(view_probs, labels)
    log_p = rescaled(probs, temperature).clamp_min(1e-300).log()
    return float(-log_p[torch.arange(len(view_labels)), torch.tensor(view_labels)].mean())


def view_ece(view_probs: torch.Tensor, labels: list[int], temperature: float = 1.0) -> float:
    """ECE of every view's (rescaled) scores against its video's label."""
    probs, view_labels = each_view(view_probs, labels)
    return expected_calibration_error(rescaled(probs, temperature) if temperature != 1.0 else probs, view_labels)


def fit_temperature(view_probs: torch.Tensor, labels: list[int]) -> float:
    """The temperature that minimises the views' negative log-likelihood (see the module)."""
    grid = np.linspace(*LOG_RANGE, 61)
    best = min(grid, key=lambda g: nll(view_probs, labels, float(np.exp(g))))
    step = grid[1] - grid[0]
    fine = np.linspace(best - step, best + step, 41)
    return float(np.exp(min(fine, key=lambda g: nll(view_probs, labels, float(np.exp(g))))))


def expected_calibration_error(probs: torch.Tensor, labels: list[int], bins: int = ECE_BINS) -> float:
    """Guo et al.'s ECE: the top score's confidence in `bins` equal bins of (0, 1], |accuracy - confidence|
    of each bin weighted by its share of the videos."""
    confidence, picked = probs.max(-1)
    right = (picked == torch.tensor(labels)).double()
    which = (confidence.double() * bins).ceil().clamp(1, bins).long() - 1  # (k/bins, (k+1)/bins] -> k
    total = 0.0
    for k in range(bins):
        inside = which == k
        if inside.any():
            total += float(inside.double().mean()) * abs(float(right[inside].mean() - confidence[inside].double().mean()))
    return total


def plot_reliability(before: torch.Tensor, after: torch.Tensor, labels: list[int], title: str, path: Path) -> None:
    """Accuracy against confidence per bin, before and after the temperature, beside the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    for probs, name in ((before, "before"), (after, "after")):
        confidence, picked = probs.max(-1)
        right = (picked == torch.tensor(labels)).float()
        which = (confidence * ECE_BINS).ceil().clamp(1, ECE_BINS).long() - 1
        points = [(float(confidence[which == k].mean()), float(right[which == k].mean()))
                  for k in range(ECE_BINS) if (which == k).any()]
        ax.plot(*zip(*points), marker="o",
                label=f"{name}: ECE {expected_calibration_error(probs, labels):.3f}")
    ax.set_xlabel("confidence (top score)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
