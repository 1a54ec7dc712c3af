"""engine/segmental.py: the action-segmentation numbers on worked examples, and against MS-TCN's published
evaluation loops (transcribed below as the reference) on random label sequences."""

from __future__ import annotations

import numpy as np
import pytest

from video_classifier.engine.segmental import (
    actions_found,
    average_precision,
    edit_score,
    f1_counts,
    f1_score,
    false_alarms,
    frame_accuracy,
    segments_of,
)

BG = "bg"


# --- the reference: MS-TCN's eval.py (get_labels_start_end_time with its end at i + 1, levenstein, f_score) ---
def reference_segments(labels, bg):
    out_labels, starts, ends = [], [], []
    last = labels[0]
    if labels[0] != bg:
        out_labels.append(labels[0])
        starts.append(0)
    for i in range(len(labels)):
        if labels[i] != last:
            if labels[i] != bg:
                out_labels.append(labels[i])
                starts.append(i)
            if last != bg:
                ends.append(i)
            last = labels[i]
    if last != bg:
        ends.append(len(labels))
    return out_labels, starts, ends


def reference_edit(p, y):
    table = np.zeros([len(p) + 1, len(y) + 1])
    table[:, 0] = np.arange(len(p) + 1)
    table[0, :] = np.arange(len(y) + 1)
    for j in range(1, len(y) + 1):
        for i in range(1, len(p) + 1):
            table[i, j] = table[i - 1, j - 1] if y[j - 1] == p[i - 1] else \
                min(table[i - 1, j] + 1, table[i, j - 1] + 1, table[i - 1, j - 1] + 1)
    return 1 - table[-1, -1] / max(len(p), len(y))


def reference_f(recognized, truth, overlap, bg):
    p_label, p_start, p_end = reference_segments(recognized, bg)
    y_label, y_start, y_end = reference_segments(truth, bg)
    tp = fp = 0
    hits = np.zeros(len(y_label))
    for j in range(len(p_label)):
        intersection = np.minimum(p_end[j], y_end) - np.maximum(p_start[j], y_start)
        union = np.maximum(p_end[j], y_end) - np.minimum(p_start[j], y_start)
        iou = (1.0 * intersection / union) * np.array([p_label[j] == y_label[x] for x in range(len(y_label))])
        idx = np.array(iou).argmax()
        if iou[idx] >= overlap and not hits[idx]:
            tp += 1
            hits[idx] = 1
        else:
            fp += 1
    return tp, fp, len(y_label) - int(hits.sum())


def random_timeline(rng, frames=200):
    """Runs of random lengths (1-30 frames) of background or one of three actions."""
    labels = []
    while len(labels) < frames:
        labels += [rng.choice([BG, "a", "b", "c"])] * int(rng.integers(1, 31))
    return labels[:frames]


def test_segments_of_a_worked_sequence():
    labels = [BG, "a", "a", BG, "b", "b", "b", "a", BG, BG, "c"]
    assert segments_of(labels, BG) == [("a", 1, 3), ("b", 4, 7), ("a", 7, 8), ("c", 10, 11)]
    assert segments_of(["a"] * 3) == [("a", 0, 3)]


def test_a_perfect_timeline_scores_one_a_shifted_one_less():
    truth = [BG] * 10 + ["a"] * 20 + [BG] * 10 + ["b"] * 20 + [BG] * 10
    assert frame_accuracy(truth, truth) == 1.0 and edit_score(truth, truth, BG) == 1.0
    for k in (0.10, 0.25, 0.50):
        assert f1_score(*f1_counts(segments_of(truth, BG), segments_of(truth, BG), k)) == 1.0
    shifted = [BG] * 10 + truth[:-10]  # 10 frames late: IoU 10 / 30 = 0.33 for each action
    assert frame_accuracy(shifted, truth) == pytest.approx(30 / 70)  # 4 stretches of 10 frames wrong
    assert edit_score(shifted, truth, BG) == 1.0  # same actions in the same order
    assert f1_score(*f1_counts(segments_of(shifted, BG), segments_of(truth, BG), 0.25)) == 1.0
    assert f1_score(*f1_counts(segments_of(shifted, BG), segments_of(truth, BG), 0.50)) == 0.0


def test_over_segmentation_lowers_edit_but_hardly_frame_accuracy():
    truth = ["a"] * 100 + ["b"] * 100
    broken = list(truth)
    for at in (20, 50, 80, 120, 160):  # one stray frame of another class inside each action
        broken[at] = "c"
    assert frame_accuracy(broken, truth) == pytest.approx(195 / 200)
    # 12 predicted segments against 2: 10 insertions -> 1 - 10 / 12
    assert edit_score(broken, truth) == pytest.approx(1 - 10 / 12)
    # at IoU 0.10 the first piece of each action (20 and 20 of 100 frames) is a hit; the other ten pieces are
    # false positives, the pieces of c too
    assert f1_counts(segments_of(broken), segments_of(truth), 0.10) == (2, 10, 0)
    assert f1_counts(segments_of(broken), segments_of(truth), 0.25) == (2, 10, 0)  # a[21:50] 29/100, b[121:160] 39/100


def test_segmental_numbers_match_the_reference_loops_on_random_timelines():
    rng = np.random.default_rng(0)
    for _ in range(200):
        truth, predicted = random_timeline(rng), random_timeline(rng)
        if rng.random() < 0.5:  # a noisy copy of the truth, where the numbers are neither 0 nor 1
            predicted = [t if rng.random() < 0.9 else rng.choice([BG, "a", "b", "c"]) for t in truth]
        p_labels, y_labels = reference_segments(predicted, BG)[0], reference_segments(truth, BG)[0]
        if p_labels or y_labels:
            assert edit_score(predicted, truth, BG) == pytest.approx(reference_edit(p_labels, y_labels))
        for k in (0.10, 0.25, 0.50):
            assert f1_counts(segments_of(predicted, BG), segments_of(truth, BG), k) == \
                reference_f(predicted, truth, k, BG)


def test_average_precision_of_a_worked_ranking():
    annotated = [(0.0, 10.0, "r1"), (20.0, 30.0, "r1"), (0.0, 10.0, "r2")]
    predicted = [(0.9, 0.0, 10.0, "r1"),    # TP (IoU 1)
                 (0.8, 21.0, 31.0, "r1"),   # IoU 9 / 11 = 0.82: TP at 0.5, FP at 0.9
                 (0.7, 0.0, 10.0, "r1"),    # its annotation is taken: FP
                 (0.6, 1.0, 10.0, "r2")]    # IoU 0.9: TP at 0.5 and at 0.9
    # at 0.5: TP, TP, FP, TP -> precision 1, 1, 2/3, 3/4 at recall 1/3, 2/3, 2/3, 1; monotone from the right:
    # 1, 1, 3/4, 3/4 -> AP = 1/3 + 1/3 + 1/3 x 3/4
    assert average_precision(predicted, annotated, 0.5) == pytest.approx(1 / 3 + 1 / 3 + 0.75 / 3)
    # at 0.9: TP, FP, FP, TP -> precision 1, 1/2, 1/3, 1/2; recall 1/3 then 2/3 -> 1/3 + 1/2 x 1/3; never reaching 1
    assert average_precision(predicted, annotated, 0.9) == pytest.approx(1 / 3 + 0.5 / 3)
    assert np.isnan(average_precision(predicted, [], 0.5))


def test_false_alarms_count_predictions_that_meet_no_annotation_of_their_label():
    annotated = [("a", 10, 20), ("b", 30, 40)]
    predicted = [("a", 12, 18), ("a", 31, 35), ("b", 35, 45), ("c", 0, 5)]
    assert false_alarms(predicted, annotated) == 2  # a at 31-35 (the annotation there is b) and c


def test_actions_found_count_annotations_met_by_a_prediction_of_their_label():
    annotated = [("a", 10, 20), ("b", 30, 40), ("a", 50, 60)]
    predicted = [("a", 19, 25), ("a", 31, 35), ("b", 40, 45)]
    # a 10-20 met by a 19-25; b 30-40 only touched at 40 by b (no overlap) and met by a (wrong label); a 50-60 none
    assert actions_found(predicted, annotated) == 1
    assert actions_found(annotated, annotated) == 3
