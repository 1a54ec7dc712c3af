"""The numbers of temporal action segmentation and detection, comparing a predicted timeline with the annotated
one: frame accuracy, segmental F1@k and the edit score as MS-TCN defines them (Farha & Gall, CVPR 2019, after
Lea et al.'s TCN metrics), detection AP at temporal IoU as ActivityNet computes it, and false alarms.

No maintained library computes the segmental ones on label sequences, so they are written here from the
published definitions; tests/test_segmental.py checks them on worked examples and against the reference
loops on random sequences.

A timeline here is a sequence of frame labels (any hashable; `background` is not an action), or a list of
segments (label, start, end) with `end` exclusive.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

Segments = list[tuple[Hashable, float, float]]


def segments_of(labels: Sequence[Hashable], background: Hashable = None) -> Segments:
    """The runs of equal labels that are not `background`, as (label, first frame, last frame + 1)."""
    out: Segments = []
    for i, label in enumerate(labels):
        if i and label == labels[i - 1]:
            continue
        if out and out[-1][2] is None:
            out[-1] = (out[-1][0], out[-1][1], i)
        if label != background:
            out.append((label, i, None))
    if out and out[-1][2] is None:
        out[-1] = (out[-1][0], out[-1][1], len(labels))
    return out


def frame_accuracy(predicted: Sequence[Hashable], annotated: Sequence[Hashable]) -> float:
    if len(predicted) != len(annotated) or not len(annotated):
        raise ValueError(f"frame labels of {len(predicted)} and {len(annotated)} frames: give equal, non-empty ones")
    return float(np.mean([p == a for p, a in zip(predicted, annotated)]))


def edit_score(predicted: Sequence[Hashable], annotated: Sequence[Hashable], background: Hashable = None) -> float:
    """1 - the Levenshtein distance between the two sequences of segment labels / the longer's length (1.0 when
    both have none): order and count of actions, blind to their timing."""
    p = [s[0] for s in segments_of(predicted, background)]
    a = [s[0] for s in segments_of(annotated, background)]
    if not p and not a:
        return 1.0
    distance = np.arange(len(a) + 1, dtype=np.float64)
    for i, label in enumerate(p, start=1):  # one row of the distance table at a time
        previous, distance[0] = distance.copy(), i
        for j in range(1, len(a) + 1):
            distance[j] = previous[j - 1] if a[j - 1] == label else 1 + min(previous[j], distance[j - 1],
                                                                             previous[j - 1])
    return float(1 - distance[-1] / max(len(p), len(a)))


def f1_counts(predicted: Segments, annotated: Segments, overlap: float) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) at IoU `overlap`: each predicted segment, in order,
    takes the annotated segment of its label it overlaps most; a hit where that IoU reaches `overlap` and the
    annotated one is not taken yet, else a false positive."""
    hits = np.zeros(len(annotated), bool)
    tp = fp = 0
    for label, start, end in predicted:
        iou = np.array([_iou(start, end, s, e) if lab == label else 0.0 for lab, s, e in annotated])
        best = max(range(len(iou)), key=iou.__getitem__) if len(iou) else -1  # the first of the largest
        if best >= 0 and iou[best] >= overlap and not hits[best]:
            tp, hits[best] = tp + 1, True
        else:
            fp += 1
    return tp, fp, int(len(annotated) - hits.sum())


def f1_score(tp: int, fp: int, fn: int) -> float:
    """F1 of summed counts (MS-TCN sums them over the videos of a split, then takes F1)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _iou(a0: float, a1: float, b0: float, b1: float) -> float:
    inter = min(a1, b1) - max(a0, b0)
    return max(inter, 0.0) / (max(a1, b1) - min(a0, b0))


def average_precision(predicted: list[tuple[float, float, float, str]], annotated: list[tuple[float, float, str]],
                      threshold: float) -> float:
    """ActivityNet's AP of one class: predictions (score, start, end, recording) ranked by score; each a true
    positive where it reaches `threshold` tIoU with an annotation of its recording not yet matched (the
    best-overlapping first); precision made monotone from the right, summed over recall's steps."""
    if not annotated:
        return float("nan")
    taken = [False] * len(annotated)
    tp = np.zeros(len(predicted))
    for k, (_, start, end, where) in enumerate(sorted(predicted, key=lambda p: -p[0])):
        ious = sorted(((_iou(start, end, s, e), i) for i, (s, e, w) in enumerate(annotated) if w == where),
                      reverse=True)
        for iou, i in ious:
            if iou < threshold:
                break
            if not taken[i]:
                taken[i], tp[k] = True, 1
                break
    hits = np.cumsum(tp)
    precision = np.concatenate([[0.0], hits / np.arange(1, len(tp) + 1), [0.0]])
    recall = np.concatenate([[0.0], hits / len(annotated), [1.0]])
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def false_alarms(predicted: Segments, annotated: Segments) -> int:
    """Predicted action segments that overlap no annotated segment of their label."""
    return sum(not any(lab == label and min(end, e) > max(start, s) for lab, s, e in annotated)
               for label, start, end in predicted)


def actions_found(predicted: Segments, annotated: Segments) -> int:
    """Annotated segments that some predicted segment of their label overlaps (by any amount)."""
    return sum(any(lab == label and min(end, e) > max(start, s) for lab, s, e in predicted)
               for label, start, end in annotated)
