"""The synthetic classes differ only by motion: a model trained on clips whose frames are all
the same frame scores near chance, while the same model trained on the real clips learns them."""

import random

import pytest
import torch
from transformers import VideoMAEConfig, VideoMAEForVideoClassification

from video_classifier.config import DataConfig, SyntheticConfig
from video_classifier.data import ClipDataset
from video_classifier.decoding import choose_decoder
from video_classifier.prepare import load_prepared, prepare
from video_classifier.preprocessing import Normalize, PreprocessSpec

SPEC = PreprocessSpec(num_frames=8, sample_rate=2, resize_shortest_edge=64, crop_size=(64, 64),
                      mean=(0.5,) * 3, std=(0.5,) * 3, min_scale=1.0, max_scale=1.25)
STEPS = 1200  # the motion model learns suddenly, after 500-900 steps at this size


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Decoded clips through the product's data path: 4 random clips per train video, all test clips."""
    root = tmp_path_factory.mktemp("motion") / "data"
    synthetic = SyntheticConfig(width=96, height=64, fps=25, seconds=1.5, speed=0.7, bits_per_pixel=1.0,
                                train_groups=20, val_groups=1, test_groups=2, clips_per_group=1, seed=1)
    prepare(DataConfig(source="synthetic", root=str(root), synthetic=synthetic))
    label2id, records = load_prepared(root)

    def stack(split, train, passes):
        dataset = ClipDataset([r for r in records if r.split == split], root, label2id, SPEC, train=train,
                              decoder=choose_decoder("auto").decode)
        items = [dataset[i] for _ in range(passes) for i in range(len(dataset))]
        return Normalize(SPEC)(torch.stack([i["video"] for i in items])), torch.tensor([i["label"] for i in items])

    random.seed(0)  # pytorchvideo's random clip sampler draws from `random`
    torch.manual_seed(0)
    return stack("train", True, 4), stack("test", False, 1), len(label2id)


def train_and_score(train, test, num_labels, static: bool) -> float:
    (x, y), (x_test, y_test) = train, test
    if static:  # every frame replaced by the clip's first: appearance kept, motion removed
        x, x_test = x[:, :1].expand_as(x), x_test[:, :1].expand_as(x_test)
    torch.manual_seed(0)
    model = VideoMAEForVideoClassification(VideoMAEConfig(
        image_size=64, patch_size=16, num_frames=8, tubelet_size=2, hidden_size=96, num_hidden_layers=3,
        num_attention_heads=4, intermediate_size=384, use_mean_pooling=True, num_labels=num_labels))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    warmup = STEPS // 10
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else (STEPS - s) / (STEPS - warmup))
    generator = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        batch = torch.randint(0, len(x), (8,), generator=generator)
        model(pixel_values=x[batch], labels=y[batch]).loss.backward()
        optimizer.step(), schedule.step(), optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        return (model(pixel_values=x_test).logits.argmax(-1) == y_test).float().mean().item()


def test_static_frames_score_near_chance_and_motion_is_learned(clips):
    train, test, num_labels = clips
    chance = 1 / num_labels
    static = train_and_score(train, test, num_labels, static=True)
    motion = train_and_score(train, test, num_labels, static=False)
    print(f"test accuracy: motion {motion:.3f}, one repeated frame {static:.3f}, chance {chance:.3f}")
    assert motion >= 0.75
    assert static <= chance + 0.15
