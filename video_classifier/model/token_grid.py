"""Where each architecture's tokens lie in space and time: the module whose output a map over space and time
reads (explanations), and how that output's rows become a grid (B, C, T', H', W').

Each backbone orders its tokens its own way, which is where hand-made reshapes go wrong:

- VideoMAE, V-JEPA 2: one sequence per clip of 2-frame tubelets, time slowest then rows then columns, no
  class token; ViViT the same after one class token.
- TimeSformer: divided attention; a layer's temporal step sees one sequence per patch (batch, rows, columns
  merged: time is the sequence); its class token is not in it.
- VideoPrism: factorised; its temporal layers see one sequence per patch too (batch, then patch), time the
  sequence.

The module read is the last encoder layer's first LayerNorm (for TimeSformer its temporal LayerNorm), as
pytorch-grad-cam's tutorial does for ViTs: a class token's model takes its answer from the class token of
the last layer only, so the last layer's own output carries no gradient to the patch tokens, while the
input of its attention does. tests/test_explain.py checks each layout by changing one tubelet of the input
and finding the one grid cell whose embedding changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..core.errors import UserError
from .model_spec import backbone, vision_part


@dataclass(frozen=True)
class TokenGrid:
    """`module` (a dotted path under the backbone; -1: the last of a list) and its output's layout: "clip"
    ((B, prefix + T'*H'*W', C)) or "per_patch" ((B*H'*W', T', C))."""

    module: str
    layout: str
    prefix: int = 0


GRIDS = {
    "videomae": TokenGrid("encoder.layer.-1.layernorm_before", "clip"),
    "vjepa2": TokenGrid("encoder.layer.-1.norm1", "clip"),
    "vivit": TokenGrid("layers.-1.layernorm_before", "clip", prefix=1),
    "timesformer": TokenGrid("encoder.layer.-1.temporal_layernorm", "per_patch"),
    "videoprism_vision_model": TokenGrid("temporal_layers.-1.layernorm_before", "per_patch"),
}


def grid_of(model: Any) -> TokenGrid:
    grid = GRIDS.get(model.config.model_type)
    if grid is None:
        raise UserError(f"maps over space and time are not defined for model type {model.config.model_type}: "
                        f"use one of {', '.join(sorted(GRIDS))}, or --explain occlusion (any model)")
    return grid


def grid_module(model: Any) -> torch.nn.Module:
    """The module of `model` (a classification model) whose output grid_of(model) describes."""
    module = backbone(model)
    for part in grid_of(model).module.split("."):
        module = module[int(part)] if part.lstrip("-").isdigit() else getattr(module, part)
    return module


def grid_shape(model_config: Any, frames: int, height: int, width: int) -> tuple[int, int, int]:
    """(T', H', W'): the tokens per clip along time, rows and columns, for input frames x height x width."""
    vision = vision_part(model_config)
    tubelet = getattr(vision, "tubelet_size", 1)  # TimeSformer: none, a token per frame
    if isinstance(tubelet, (list, tuple)):  # ViViT, VideoPrism: [time, height, width]
        tubelet, patch = tubelet[0], tubelet[1]
    else:
        patch = vision.patch_size
    return frames // tubelet, height // patch, width // patch


def to_grid(tokens: torch.Tensor, grid: TokenGrid, shape: tuple[int, int, int]) -> torch.Tensor:
    """The grid module's output -> (B, C, T', H', W')."""
    t, h, w = shape
    if grid.layout == "clip":
        body = tokens[:, grid.prefix:]
        return body.reshape(body.shape[0], t, h, w, body.shape[-1]).permute(0, 4, 1, 2, 3)
    return tokens.reshape(-1, h, w, t, tokens.shape[-1]).permute(0, 4, 3, 1, 2)
