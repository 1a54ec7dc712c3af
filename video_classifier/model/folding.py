"""A multi-label model's per-class thresholds folded into its classifier, so the stock pipeline obeys them.

Thresholds chosen on val (task.MultiLabel.choose_thresholds) are numbers in config.json that
transformers' `pipeline("video-classification")` never reads: its users take the labels whose sigmoid
passes 0.5. Shifting class c's logit by logit(t_c) (its classifier bias lowered by log(t_c / (1 - t_c)))
makes sigmoid(shifted) >= 0.5 exactly where sigmoid(logit) >= t_c: the same labels at 0.5 as before at
the thresholds, the ranking within a class and so every class's average precision unchanged (the scores
themselves move: they read "how far past its threshold", not the val-calibrated probability).
config.json keeps what was folded (`label_thresholds_folded`) and says 0.5 for every class
(`label_thresholds`), which infer.py, the ONNX backend, the page and the timeline then apply.
"""

from __future__ import annotations

import math
from typing import Any

import torch

TEMPERATURE = "calibration_temperature_folded"  # config.json: the temperature fitted on val, now in the classifier
FOLDED = "label_thresholds_folded"  # config.json: the thresholds chosen on val, now in the classifier's bias
EDGE = 1e-6  # a threshold of 0 or 1 (a class always or never on) is folded as this close to it


def classifier_layer(model: Any) -> torch.nn.Linear | None:
    """The linear layer that gives the logits (every architecture here names it `classifier`), or None."""
    layer = getattr(model, "classifier", None)
    if isinstance(layer, torch.nn.Linear) and layer.bias is not None and layer.out_features == model.config.num_labels:
        return layer
    return None


def fold_thresholds(model: Any, thresholds: dict[str, float]) -> bool:
    """Lower each class's classifier bias by logit(its threshold) and record it in model.config; False
    (nothing changed) where the model has no linear classifier with a bias to fold into."""
    layer = classifier_layer(model)
    if layer is None:
        return False
    label2id = {label: int(i) for label, i in model.config.label2id.items()}
    shift = torch.zeros(layer.out_features, dtype=torch.float64)
    for label, t in thresholds.items():
        t = min(max(float(t), EDGE), 1 - EDGE)
        shift[label2id[label]] = math.log(t / (1 - t))
    with torch.no_grad():
        layer.bias.copy_((layer.bias.double() - shift.to(layer.bias.device)).to(layer.bias.dtype))
    model.config.label_thresholds_folded = dict(thresholds)
    model.config.label_thresholds = {label: 0.5 for label in thresholds}
    return True


def fold_temperature(model: Any, temperature: float) -> bool:
    """Divide the classifier's weights and bias by `temperature` (its logits then come out divided by it:
    calibrated scores in every consumer of the saved model) and record it in model.config; False (nothing
    changed) where the model has no linear classifier with a bias."""
    layer = classifier_layer(model)
    if layer is None:
        return False
    with torch.no_grad():
        layer.weight.div_(temperature)
        layer.bias.div_(temperature)
    setattr(model.config, TEMPERATURE, float(temperature))
    return True
