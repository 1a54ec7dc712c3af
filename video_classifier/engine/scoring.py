"""Scores of videos and clips: the loops over a dataset, shared by evaluation and inference, so a video
gets the same scores from both. The model's description (ModelSpec) says how to run the model on a
batch, and its task (spec.task) what the logits mean."""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from ..data.datasets import ClipDataset, ViewDataset, collate_views
from ..model.model_spec import ModelSpec


def video_scores(model: Any, spec: ModelSpec, views: ViewDataset, batch_size: int, workers: int = 0,
                 desc: str = "videos", per_view: bool = False, logits: bool = False) -> torch.Tensor:
    """(videos, classes): each view's scores averaged over the video's views, batched by whole videos; with
    `per_view`, each view's, (videos, views, classes), in ViewDataset's order; with `logits`, each view's
    logits rather than its scores (the energy score's input). NaN: a video left out."""
    return video_scores_each(model, {"": spec}, views, batch_size, workers, desc, per_view, logits)[""]


@torch.inference_mode()
def video_scores_each(model: Any, specs: dict[str, ModelSpec], views: ViewDataset, batch_size: int,
                      workers: int = 0, desc: str = "videos", per_view: bool = False,
                      logits: bool = False) -> dict[str, torch.Tensor]:
    """video_scores under each of `specs` (e.g. one model in two precisions), every batch of views decoded
    once for all of them."""
    per_video = views.num_clips * views.crops.num_crops
    loader = torch.utils.data.DataLoader(views, batch_size=max(1, batch_size // per_video), num_workers=workers,
                                         collate_fn=collate_views, pin_memory=torch.cuda.is_available())
    classes = len(next(iter(specs.values())).id2label)
    out = {name: torch.full((len(views), per_video, classes), float("nan")) for name in specs}
    for batch in tqdm(loader, desc=desc, unit="batch", leave=False):
        if len(batch["video_index"]):
            for name, spec in specs.items():
                raw = spec.logits(model, batch["views"])
                scores = (raw if logits else spec.task.scores(raw)).cpu()
                out[name][batch["video_index"]] = scores.view(-1, per_video, scores.shape[-1])
    return out if per_view else {name: scores.mean(1) for name, scores in out.items()}


@torch.inference_mode()
def clip_scores(model: Any, spec: ModelSpec, clips: ClipDataset, batch_size: int, workers: int = 0) -> torch.Tensor:
    """(clips, classes): each clip's scores on its own. NaN: a clip that did not decode."""
    loader = torch.utils.data.DataLoader(clips, batch_size=batch_size, num_workers=workers,
                                         collate_fn=spec.collate, pin_memory=torch.cuda.is_available())
    out = torch.full((len(clips), len(spec.id2label)), float("nan"))
    for batch in tqdm(loader, desc="clips", unit="batch", leave=False):
        if len(batch["labels"]):
            out[batch["index"]] = spec.task.scores(spec.logits(model, batch[spec.input_key])).cpu()
    return out
