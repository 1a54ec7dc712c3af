"""Thresholds folded into the classifier: at 0.5 the folded model gives exactly the labels the unfolded one
gave at its thresholds, on every architecture, with each class's ranking (so its AP) unchanged."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import average_precision_score

from video_classifier.core.config import TinyModelConfig
from video_classifier.core.task import MultiLabel, task_for
from video_classifier.model.folding import FOLDED, classifier_layer, fold_thresholds
from video_classifier.model.model_spec import ARCHITECTURES, describe, tiny_model
from video_classifier.model.modeling import load_for_training

TINY = dict(image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_attention_heads=2, num_hidden_layers=2,
            intermediate_size=64)
LABELS = {"a": 0, "b": 1, "c": 2, "d": 3}


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_labels_at_half_after_folding_are_the_labels_at_the_thresholds_before(architecture, tmp_path):
    backbone, processor = tiny_model(TinyModelConfig(architecture=architecture, **TINY), seed=0)
    backbone.save_pretrained(tmp_path)
    model = load_for_training(str(tmp_path), LABELS, task=MultiLabel()).eval()
    with torch.no_grad():  # a spread of logits around 0, so thresholds fall inside them
        classifier_layer(model).bias.normal_(0, 2, generator=torch.Generator().manual_seed(1))
    spec = describe(model, processor, sample_rate=1)
    clips = torch.randint(0, 256, (12, TINY["num_frames"], 3, 32, 32), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before_logits = spec.logits(model, clips)
    before = before_logits.sigmoid()
    # each class's threshold inside its own scores, between two of them as val's are (a fixed 0.5 would test
    # nothing); one at the edge of [0, 1]
    thresholds = {label: float(before[:, i].sort().values[5:7].mean()) for label, i in LABELS.items()}
    thresholds["d"] = 0.0
    assert fold_thresholds(model, thresholds)
    with torch.no_grad():
        after_logits = spec.logits(model, clips)
    after = after_logits.sigmoid()
    t = torch.tensor([thresholds[label] for label in LABELS])
    assert torch.equal(after >= 0.5, before >= t)
    assert (before >= t).any() and not (before >= t).all()
    assert after[:, LABELS["d"]].min() >= 0.5  # threshold 0: always on
    for c in range(len(LABELS)):  # the logits shifted by a constant per class (a score near 1 may round to 1)
        assert torch.equal(after_logits[:, c].argsort(), before_logits[:, c].argsort())
        y = (torch.arange(12) % 3 == c % 3).numpy()
        assert average_precision_score(y, after_logits[:, c]) == pytest.approx(
            average_precision_score(y, before_logits[:, c]))
    assert getattr(model.config, FOLDED) == thresholds
    assert task_for(model.config).thresholds == (0.5,) * len(LABELS)


def test_a_model_without_a_linear_classifier_is_left_as_it_is(tmp_path):
    backbone, _ = tiny_model(TinyModelConfig(**TINY), seed=0)
    backbone.save_pretrained(tmp_path)
    model = load_for_training(str(tmp_path), LABELS, task=MultiLabel())
    model.classifier = torch.nn.Sequential(model.classifier)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert not fold_thresholds(model, {label: 0.3 for label in LABELS})
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert not hasattr(model.config, FOLDED)
