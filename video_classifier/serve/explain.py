"""Where and when a trained model looked: a map over space and time of what raised one label's score.

The video is cut into the timeline's windows (one clip each, back to back, the centre crop: what the
timeline scores); each window's clip gets a map at the model's input size, which is then laid back onto
the video's own frames (zero outside the crop). Three methods:

- `hirescam` (default) and `gradcam`: pytorch-grad-cam's HiResCAM and GradCAM on the tokens of the layer
  model/token_grid.py names, reshaped to (C, T', H', W') by the architecture's own layout, upsampled over
  the clip. GradCAM weighs each channel by its gradient averaged over all tokens; HiResCAM multiplies
  gradient and activation token by token (Draelos & Carin, 2020), which keeps where a token's evidence
  is: on bench/explain.py's moving square its pointing game was 0.975 against Grad-CAM's 0.775 (seed 0).
  Both scale each map to [0, 1]; a window's map is then weighted by the window's score for the label, so
  that windows without the label stay dark.
- `occlusion`: captum's Occlusion: tubes of the clip (a quarter of its frames and of its height and width,
  never smaller than a token) set to the mean colour one at a time; a pixel's value is how much the
  label's score fell when its tube was hidden (rises count as 0). Needs no gradients nor a token layout,
  so it explains any model; it costs one forward pass per tube (64 per window).

`curve` is the map's mass per sampled frame over time: which seconds mattered.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import UserError
from ..data.clips import decode_clip
from ..data.manifest import probe_video
from ..data.preprocessing import MultiCropTransform, crop_offsets, exact_fps
from ..model.model_spec import ModelSpec
from ..model.token_grid import grid_module, grid_of, grid_shape, to_grid
from .timeline import window_indices, window_starts

METHODS = ("hirescam", "gradcam", "occlusion")
CAMS = {"hirescam": "HiResCAM", "gradcam": "GradCAM"}  # pytorch-grad-cam's classes
OCCLUSION_TUBES = 4  # tubes per axis (time, rows, columns) of a clip


@dataclass
class Explanation:
    """`maps` (F, H, W) float in [0, 1] on the video's frames `frames` (F sampled frame numbers, ascending),
    at `times` seconds; `curve` (F,) the map's mass per frame (max 1); `scores` the label's score per
    window starting at `starts` seconds."""

    video: str
    label: str
    method: str
    fps: float
    frames: list[int]
    times: np.ndarray
    maps: np.ndarray
    curve: np.ndarray
    starts: list[float]
    scores: list[float]


class _Scores(torch.nn.Module):
    """(B, C, T, H, W) normalised pixels -> (B, classes): the layout pytorch-grad-cam and captum expect of a
    video model, around the model's own (B, T, C, H, W) input. `probabilities`: the task's scores, else
    logits."""

    def __init__(self, model: Any, spec: ModelSpec, probabilities: bool):
        super().__init__()
        self.model, self.spec, self.probabilities = model, spec, probabilities

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        logits = self.spec.class_scores(self.model(**self.spec.inputs(pixels.permute(0, 2, 1, 3, 4))).logits)
        return self.spec.task.scores(logits) if self.probabilities else logits.float()


def label_id(spec: ModelSpec, label: str | None, scores: torch.Tensor) -> int:
    """The class to explain: `label`, else the one with the highest mean score over the windows."""
    if label is None:
        return int(torch.topk(scores.mean(dim=0), 1).indices[0])
    ids = {name: i for i, name in spec.id2label.items()}
    if label not in ids:
        raise UserError(f"--explain-label {label} is not one of the model's labels: {', '.join(ids)}")
    return ids[label]


def gradcam_map(model: Any, spec: ModelSpec, pixels: torch.Tensor, target: int, method: str = "hirescam"
                ) -> np.ndarray:
    """(B, T, h, w) maps in [0, 1] of normalised (B, C, T, h, w) clips, by pytorch-grad-cam's HiResCAM or
    GradCAM (`method`)."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    grid = grid_of(model)
    shape = grid_shape(model.config, *pixels.shape[2:])
    with getattr(pytorch_grad_cam, CAMS[method])(_Scores(model, spec, probabilities=False), [grid_module(model)],
                 reshape_transform=lambda tokens: to_grid(tokens, grid, shape)) as cam:
        cam.compute_input_gradient = True  # gradients reach the tokens even where no weight trains
        with torch.enable_grad():
            maps = cam(input_tensor=pixels, targets=[ClassifierOutputTarget(target)] * len(pixels))
    return np.asarray(maps, dtype=np.float32)


def occlusion_map(model: Any, spec: ModelSpec, pixels: torch.Tensor, target: int) -> np.ndarray:
    """(B, T, h, w) falls of the label's score when each tube is hidden (captum's Occlusion), >= 0."""
    from captum.attr import Occlusion

    _, channels, frames, height, width = pixels.shape
    tubelet, patch_h, patch_w = token_size(model, frames, height, width)
    window = (channels, max(tubelet, frames // OCCLUSION_TUBES), max(patch_h, height // OCCLUSION_TUBES),
              max(patch_w, width // OCCLUSION_TUBES))
    with torch.no_grad():
        attribution = Occlusion(_Scores(model, spec, probabilities=True)).attribute(
            pixels, sliding_window_shapes=window, strides=window, target=target, baselines=0.0,
            perturbations_per_eval=16)
    return attribution.sum(dim=1).clamp(min=0).numpy().astype(np.float32) / channels


def token_size(model: Any, frames: int, height: int, width: int) -> tuple[int, int, int]:
    """Frames, rows and columns of pixels one token covers (1 each for a model without a known grid)."""
    try:
        t, h, w = grid_shape(model.config, frames, height, width)
    except AttributeError:
        return 1, 1, 1
    return frames // t, height // h, width // w


@dataclass
class Windows:
    """The timeline's windows of one video, back to back: `pixels` (W, C, T, h, w) normalised centre crops,
    `indices` each window's frame numbers, `starts` its start in seconds, `frame_hw` the video's size."""

    pixels: torch.Tensor
    indices: list[list[int]]
    starts: list[float]
    frame_hw: tuple[int, int]
    fps: float


def windows_of(spec: ModelSpec, path: Path, decoding: Any) -> Windows:
    total, fps, duration = probe_video(path)
    decode = decoding.reader(path, fps)
    length = spec.preprocess.clip_duration(fps)
    starts = window_starts(duration, float(length), float(length))
    indices = [window_indices(start, length, exact_fps(fps), total, spec.preprocess.num_frames) for start in starts]
    crop = MultiCropTransform(spec.preprocess, 1)
    clips = [decode_clip(decode, path, frames, fps) for frames in indices]
    pixels = torch.cat([spec.pixels(crop(clip)) for clip in clips]).permute(0, 2, 1, 3, 4)
    return Windows(pixels, indices, starts, tuple(clips[0].shape[-2:]), fps)


def window_scores(model: Any, spec: ModelSpec, pixels: torch.Tensor, batch_size: int = 4) -> torch.Tensor:
    """(W, classes) the task's scores of normalised (W, C, T, h, w) clips."""
    with torch.no_grad():
        return torch.cat([_Scores(model, spec, True)(pixels[i:i + batch_size])
                          for i in range(0, len(pixels), batch_size)])


def window_maps(model: Any, spec: ModelSpec, pixels: torch.Tensor, target: int, method: str,
                scores: torch.Tensor, batch_size: int = 4) -> np.ndarray:
    """(W, T, h, w) maps of class `target` over normalised clips (a CAM's weighted by `scores`, the
    windows' scores of it)."""
    def mapper(clips: torch.Tensor) -> np.ndarray:
        return gradcam_map(model, spec, clips, target, method) if method in CAMS else occlusion_map(
            model, spec, clips, target)

    maps = np.concatenate([mapper(pixels[i:i + batch_size]) for i in range(0, len(pixels), batch_size)])
    if method in CAMS:
        maps = maps * scores.numpy()[:, None, None, None]
    return maps


def explain(model: Any, spec: ModelSpec, path: Path, decoding: Any, method: str = "hirescam",
            label: str | None = None, batch_size: int = 4) -> Explanation:
    """The map of `label` (default: the top-scoring class) over the video at `path`."""
    if method not in METHODS:
        raise UserError(f"--explain {method} is not a method: use one of {', '.join(METHODS)}")
    windows = windows_of(spec, path, decoding)
    scores = window_scores(model, spec, windows.pixels, batch_size)
    target = label_id(spec, label, scores)
    maps = window_maps(model, spec, windows.pixels, target, method, scores[:, target], batch_size)
    return _on_frames(path, spec, target, method, windows, maps, scores[:, target].tolist())


def _on_frames(path: Path, spec: ModelSpec, target: int, method: str, windows: Windows, maps: np.ndarray,
               scores: list[float]) -> Explanation:
    """Windows' maps (W, T, h, w) at the model's crop -> one map per sampled frame at the frame's size,
    normalised over the whole video to [0, 1]; a frame two windows share keeps the larger value."""
    by_frame: dict[int, np.ndarray] = {}
    for frames, clip_maps in zip(windows.indices, maps):
        for frame, map_ in zip(frames, uncropped(clip_maps, spec, windows.frame_hw)):
            by_frame[frame] = np.maximum(by_frame[frame], map_) if frame in by_frame else map_
    frames = sorted(by_frame)
    stacked = np.stack([by_frame[f] for f in frames])
    stacked = stacked / max(float(stacked.max()), 1e-12)
    mass = stacked.sum(axis=(1, 2))
    return Explanation(str(path), spec.id2label[target], method, windows.fps, frames,
                       np.array([float(Fraction(f) / exact_fps(windows.fps)) for f in frames]), stacked,
                       mass / max(float(mass.max()), 1e-12), windows.starts, scores)


def uncropped(maps: np.ndarray, spec: ModelSpec, frame_hw: tuple[int, int]) -> np.ndarray:
    """(T, h, w) maps over the centre crop of frames resized as the processor does -> (T, H, W) over the
    original frames: the resize and the crop's place taken from MultiCropTransform itself, zero outside."""
    height, width = frame_hw
    resized = MultiCropTransform(spec.preprocess, 1).resize(torch.zeros(1, 1, height, width, dtype=torch.uint8))
    resized_h, resized_w = resized.shape[-2:]
    crop_h, crop_w = spec.preprocess.crop_size
    top, left = crop_offsets(resized_h, crop_h, 1)[0], crop_offsets(resized_w, crop_w, 1)[0]
    canvas = torch.zeros(maps.shape[0], 1, resized_h, resized_w)
    canvas[:, :, top:top + crop_h, left:left + crop_w] = F.interpolate(
        torch.from_numpy(maps)[:, None], size=(crop_h, crop_w), mode="bilinear", align_corners=False)
    return F.interpolate(canvas, size=(height, width), mode="bilinear", align_corners=False)[:, 0].numpy()
