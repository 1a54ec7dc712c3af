"""Which threshold, if any, turns a single-label answer into `unknown` (infer.unknown).

Training keeps the threshold it chose on val (engine/open_set.py: the calibrated top score that
infer.unknown_accept of the known val videos reach) in config.json, beside what it was chosen for. A run
with a background class keeps none: the background class answers "nothing of interest" instead. infer.py,
eval.py, the timeline, the page and the live tab all ask `unknown_threshold` once, after loading.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from ..core.errors import UserError
from ..core.task import MultiLabel

UNKNOWN = "unknown"  # the answer below the threshold
THRESHOLD = "unknown_threshold"  # config.json: the top score below which a video is unknown
ACCEPT = "unknown_accept"  # config.json: the share of known val videos the threshold accepted
BACKGROUND = "background_class"  # config.json: the class learnt from what no annotation covers


def unknown_threshold(model_config: Any, setting: str | float, multi_label: bool) -> float | None:
    """The threshold infer.unknown asks for on this model: None for off, for a multi-label model under auto
    (a video with no class past its threshold already has no label), and for auto on a model that kept
    none (trained with a background class, or before thresholds were kept: said once)."""
    if setting == "off":
        return None
    if multi_label:
        if setting == "auto":
            return None
        raise UserError(f"infer.unknown: {setting} is for single-label models; a multi-label model answers no "
                        "label where no class passes its threshold: set infer.unknown: off")
    if setting != "auto":
        return float(setting)
    kept = getattr(model_config, THRESHOLD, None)
    if kept is None:
        background = getattr(model_config, BACKGROUND, None)
        print(f"infer.unknown: auto: this model answers its background class {background!r} where nothing known "
              "happens" if background else
              "infer.unknown: auto: this checkpoint keeps no unknown_threshold (trained before it was chosen, or "
              "elsewhere): every answer is a class; give infer.unknown a number to set one", file=sys.stderr)
        return None
    return float(kept)


def with_unknown(model: Any, spec: Any, setting: str | float) -> Any:
    """`spec` (a ModelSpec) answering unknown below the threshold infer.unknown asks for on `model`."""
    return replace(spec, unknown=unknown_threshold(model.config, setting, isinstance(spec.task, MultiLabel)))
