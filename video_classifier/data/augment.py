"""The VideoMAE fine-tuning recipe's appearance augmentation, on a training clip's uint8 frames: torchvision's
RandAugment and random erasing over the clip as one `tv_tensors.Video`, so each draw (RandAugment's
operations and magnitudes, the erased box and its noise) applies to every frame alike and the clip's motion
is untouched.

RandAugment: `train.rand_augment` {num_ops, magnitude}, magnitude on timm's scale of 10 (VideoMAE's
`rand-m7-n4-mstd0.5-inc1`: num_ops 4, magnitude 7; torchvision draws no magnitude noise, so mstd0.5 is not
reproduced; its operations grow in severity with the magnitude, as inc1's). Random erasing:
`train.random_erasing` is the probability of one box (2-33% of the frame, aspect 0.3-3.3, as timm's)
filled with per-pixel noise as timm's "pixel" mode gives it after normalisation (N(0, 1) there: the
normalisation's mean plus std times N(0, 1) here, in uint8).
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

MAGNITUDE_LEVELS = 10  # timm's scale: magnitude m of 10 is torchvision's bin m of 11 (0 .. 10)


class PixelNoiseErasing(v2.RandomErasing):
    """torchvision's RandomErasing (its box sampling, one box for the whole clip) filling the box with
    per-pixel noise of the normalisation's distribution, in uint8: mean + std x N(0, 1), times 255."""

    def __init__(self, p: float, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__(p=p, value="random")
        self.mean, self.std = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        params = super().make_params(flat_inputs)
        if params["v"] is not None:  # N(0, 1) per pixel, as timm draws it in normalised space
            params["v"] = ((self.mean + self.std * params["v"]) * 255).round().clamp(0, 255).to(torch.uint8)
        return params


class ClipAugment:
    """RandAugment and/or random erasing of a (T, C, H, W) uint8 clip, one draw for all its frames."""

    def __init__(self, rand_augment: tuple[int, int] | None, random_erasing: float, mean: tuple[float, ...],
                 std: tuple[float, ...]):
        steps = []
        if rand_augment is not None:
            num_ops, magnitude = rand_augment
            steps.append(v2.RandAugment(num_ops=num_ops, magnitude=magnitude,
                                        num_magnitude_bins=MAGNITUDE_LEVELS + 1))
        if random_erasing > 0:
            steps.append(PixelNoiseErasing(random_erasing, mean, std))
        self.steps = v2.Compose(steps) if steps else None

    def __bool__(self) -> bool:
        return self.steps is not None

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if self.steps is None:
            return frames
        return self.steps(tv_tensors.Video(frames)).as_subclass(torch.Tensor)
