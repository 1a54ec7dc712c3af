"""train.cache_features: a frozen backbone's outputs, computed once per video and view, for a probe that
trains in seconds per epoch.

With the backbone frozen and no augmentation, the backbone gives the same tokens for the same view on
every epoch: they are computed once (`compute_features`: each video's num_clips clips spread over it,
centre crop, through the whole classification model with a hook on the backbone, so that each
architecture's own call is what runs), kept in memory, and training draws one cached view per video and
epoch (`FeatureDataset`). While the head trains, `CachedBackbone` stands in for the backbone's forward:
it hands the head the cached tokens it is given in place of pixels. The backbone's weights stay in the
model, so checkpoints and the saved model are whole; the final evaluation runs the real backbone on the
videos (the stand-in is removed first).
"""

from __future__ import annotations

import random
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from tqdm.auto import tqdm
from transformers.modeling_outputs import BaseModelOutput

from ..core.config import Config
from ..core.errors import UserError
from ..data.datasets import ViewDataset
from ..data.decoding import choose_decoder
from ..data.sources import source_of
from ..model.model_spec import ModelSpec, backbone


def check_cacheable(config: Config) -> None:
    """Cached features need a frozen backbone and no augmentation that changes a view's pixels."""
    train = config.train
    problems = [
        ("train.freeze", train.freeze != "backbone", "backbone (features of a backbone that trains change every step)"),
        ("train.horizontal_flip", train.horizontal_flip, "false"),
        ("train.min_scale / max_scale", (train.min_scale, train.max_scale) != (1.0, 1.0), "1.0 both"),
        ("train.max_stride", train.max_stride is not None, "null"),
        ("train.rand_augment", train.rand_augment is not None, "null"),
        ("train.random_erasing", train.random_erasing > 0, "0"),
        ("train.repeated_augmentation", train.repeated_augmentation > 1, "1"),
        ("train.whole_video_clips", train.whole_video_clips > 0, "0"),
        ("train.mixup_alpha / cutmix_alpha", train.mixup_alpha > 0 or train.cutmix_alpha > 0, "0 both"),
        ("data.backend", config.data.backend != "native", "native"),
        ("data.hf_dataset.streaming", not source_of(config.data).probes_training_videos(config.data),
         "false (a streamed train split is read as it streams, not once ahead)"),
    ]
    for key, bad, fix in problems:
        if bad:
            raise UserError(f"train.cache_features needs {key}: {fix}; or set train.cache_features: false")


def compute_features(model: Any, spec: ModelSpec, views: torch.utils.data.Dataset, batch_size: int,
                     desc: str) -> list[torch.Tensor | None]:
    """The backbone's last hidden state for every view of every video of `views` (a ViewDataset):
    one (views, tokens, hidden) float32 tensor per video, None for a video that did not decode."""
    out: list[torch.Tensor | None] = []
    grabbed: list[torch.Tensor] = []
    hook = backbone(model).register_forward_hook(lambda _m, _a, output: grabbed.append(output.last_hidden_state))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for index in tqdm(range(len(views)), desc=desc, unit="video", file=sys.stderr):
                item = views[index]
                if item["views"] is None:
                    out.append(None)
                    continue
                chunks = []
                for chunk in item["views"].split(batch_size):
                    grabbed.clear()
                    spec.logits(model, chunk)
                    chunks.append(grabbed[-1].float().cpu())
                out.append(torch.cat(chunks))
    finally:
        hook.remove()
        model.train(was_training)
    return out


class FeatureDataset(torch.utils.data.Dataset):
    """Items as ClipDataset's, with cached tokens under "video": in training one random cached view of
    each video per access; in evaluation every view of every video."""

    def __init__(self, features: list[torch.Tensor | None], targets: list[Any], train: bool):
        kept = [v for v, f in enumerate(features) if f is not None]
        self.features, self.targets, self.train = features, targets, train
        self.items = ([(v, None) for v in kept] if train
                      else [(v, k) for v in kept for k in range(len(features[v]))])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        video, view = self.items[index]
        views = self.features[video]
        view = random.randrange(len(views)) if view is None else view
        return {"video": views[view], "label": self.targets[video], "video_index": video, "clip_index": view}


class CachedBackbone:
    """The backbone's forward while a head trains on cached features: it returns, as the backbone's last
    hidden state, the tensor it is called with (the batch's cached tokens)."""

    def __init__(self, input_key: str):
        self.input_key = input_key

    def __call__(self, *args: Any, **kwargs: Any) -> BaseModelOutput:
        features = args[0] if args else kwargs[self.input_key]
        return BaseModelOutput(last_hidden_state=features)


@contextmanager
def cached_backbone(model: Any, spec: ModelSpec) -> Iterator[None]:
    """Within: the model's backbone forward is CachedBackbone (an attribute of the backbone module, which
    torch calls before its class's forward); after, its own again."""
    module = backbone(model)
    module.forward = CachedBackbone(spec.input_key)
    try:
        yield
    finally:
        del module.forward


def features_size(features: list[torch.Tensor | None]) -> str:
    """'1,500 views, 7.2 GB' of the cached features."""
    tensors = [f for f in features if f is not None]
    views = sum(len(f) for f in tensors)
    return f"{views:,} views, {sum(f.numel() * f.element_size() for f in tensors) / 1e9:.2f} GB"


def feature_datasets(model: Any, spec: ModelSpec, config: Config, splits: dict[str, list[Any]],
                     label2id: dict[str, int], failures: Any = None) -> dict[str, FeatureDataset]:
    """Training and validation datasets of cached features: each video's eval.num_clips clips spread over
    it, centre crop."""
    decoder = choose_decoder(config.data.decoder).decode
    datasets = {}
    for split in ("train", "val"):
        records = splits[split]
        views = ViewDataset(records, config.data.root, label2id, spec.preprocess, config.eval.num_clips, 1, decoder,
                            failures=failures, task=spec.task)
        features = compute_features(model, spec, views, config.eval.batch_size, f"caching {split} features")
        print(f"train.cache_features: {split}: {features_size(features)} in memory", flush=True)
        targets = [spec.task.target(r.label, label2id) for r in records]
        datasets[split] = FeatureDataset(features, targets, train=split == "train")
    return datasets
