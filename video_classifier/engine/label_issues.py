"""Likely label errors, videos far from every class, and the classes most confused, from out-of-sample
predicted probabilities of a cheap probe on cached backbone features, ranked by cleanlab.

The probe is a logistic regression on each video's features (the backbone's tokens averaged over its
tokens and views: engine/features.py). Every video is scored by a probe that never saw it, nor any video
of its group (a scene, a recording): `out_of_sample` fits one probe per fold of a stratified group k-fold
over all the videos of all splits, and each fold's probe scores only the videos held out of it. cleanlab
then ranks every video whose held-out probe disagrees with its label (`find_label_issues` with
filter_by="predicted_neq_given", by self-confidence) and marks those its confident learning counts as
errors too (its default filter, prune_by_noise_rate): on bench/audit.py's corrupted demo that default list
missed up to 21% of the swapped labels (seed 2: 23 of 29 found), while the probe disagreed with every one
of them, and ranking all disagreements put 90-93% of the swapped videos in the top k. It also scores each video's distance from
the rest (`OutOfDistribution` on the features) and lists the overlapping classes
(`find_overlapping_classes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cleanlab.dataset import find_overlapping_classes
from cleanlab.filter import find_label_issues
from cleanlab.outlier import OutOfDistribution
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FOLDS = 5
# far from every class: an out-of-distribution score below the lower quartile minus FAR_OUT x the
# interquartile range (Tukey's "far out"), a rule that flags nothing on a tight cluster of scores
FAR_OUT = 3.0


@dataclass
class LabelFindings:
    """`pred_probs` (N, C) out of sample, `suggested` (N,) the class the held-out probe predicts, `folds` (N,)
    the fold that held each video out, `issues` the indices of videos the probe disagrees with (most likely
    wrong first), `likely` those of them cleanlab's confident learning counts as errors, `quality` (N,) cleanlab's label quality (low: likely
    wrong), `ood` (N,) out-of-distribution score (low: far from the rest), `outliers` its far-out indices,
    `overlap` [(class a, class b, videos, joint probability)] most confused first."""

    pred_probs: np.ndarray
    suggested: np.ndarray
    folds: np.ndarray
    issues: list[int]
    likely: set[int]
    quality: np.ndarray
    ood: np.ndarray
    outliers: list[int]
    overlap: list[tuple[int, int, int, float]]


def splitter(labels: np.ndarray, groups: list[str]) -> tuple[object, int]:
    """A stratified group k-fold where each class has a video in FOLDS groups, else fewer folds (2 at least);
    without groups to spare, a plain stratified k-fold."""
    per_class = min(len({g for g, y in zip(groups, labels) if y == c}) for c in np.unique(labels))
    folds = max(2, min(FOLDS, per_class))
    if per_class >= 2:
        return StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=0), folds
    smallest = int(np.bincount(labels).min())
    return StratifiedKFold(n_splits=max(2, min(FOLDS, smallest)), shuffle=True, random_state=0), folds


def out_of_sample(features: np.ndarray, labels: np.ndarray, groups: list[str], classes: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, classes) probabilities, each row from a probe fitted without that video; the class that probe
    predicts; the fold of each."""
    folds, (split, _) = np.full(len(labels), -1), splitter(labels, groups)
    predicted = np.zeros(len(labels), dtype=int)
    probs = np.zeros((len(labels), classes))
    for fold, (fit, held) in enumerate(split.split(features, labels, groups)):
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
        probe.fit(features[fit], labels[fit])
        probs[np.ix_(held, probe[-1].classes_)] = probe.predict_proba(features[held])
        predicted[held] = probe.predict(features[held])
        folds[held] = fold
    probs = np.clip(probs, 1e-6, None)  # a class absent from a fold's fit: its probability is not exactly 0
    return probs / probs.sum(axis=1, keepdims=True), predicted, folds


def far_out(scores: np.ndarray) -> list[int]:
    """Indices of scores below Q1 - FAR_OUT x IQR, lowest first."""
    q1, q3 = np.percentile(scores, [25, 75])
    return [int(i) for i in np.argsort(scores) if scores[i] < q1 - FAR_OUT * (q3 - q1)]


def label_findings(features: np.ndarray, labels: np.ndarray, groups: list[str], classes: int) -> LabelFindings:
    """All of the module's findings for videos `features` (N, D) labelled `labels` (N,) in `groups`."""
    from cleanlab.rank import get_label_quality_scores

    probs, predicted, folds = out_of_sample(features, labels, groups, classes)
    issues = find_label_issues(labels, probs, filter_by="predicted_neq_given", return_indices_ranked_by="self_confidence")
    likely = {int(i) for i in find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")}
    quality = get_label_quality_scores(labels, probs)
    ood = OutOfDistribution().fit_score(features=features)
    table = find_overlapping_classes(labels=labels, pred_probs=probs)
    overlap = [(int(r["Class Index A"]), int(r["Class Index B"]), int(r["Num Overlapping Examples"]),
                float(r["Joint Probability"])) for _, r in table.iterrows() if r["Num Overlapping Examples"] > 0]
    return LabelFindings(probs, predicted, folds, [int(i) for i in issues], likely, quality, ood, far_out(ood), overlap)
