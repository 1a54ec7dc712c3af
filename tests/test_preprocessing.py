from fractions import Fraction

import pytest
import torch
from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEVideoProcessor

from video_classifier.config import TrainConfig
from video_classifier.model_spec import ModelSpec, describe
from video_classifier.preprocessing import (ClipTransform, MultiCropTransform, Normalize, PreprocessSpec,
                                            crop_offsets, spread_clip_starts, temporal_subsample)

SPEC = PreprocessSpec(num_frames=8, sample_rate=2, resize_shortest_edge=64, crop_size=(64, 64),
                      mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225), min_scale=1.0, max_scale=1.25)


def decoded_clip(frames: int = 16, height: int = 96, width: int = 128) -> torch.Tensor:
    """What pytorchvideo's decoder returns: (C, T, H, W) float in [0, 255]."""
    return torch.randint(0, 256, (3, frames, height, width)).float()


def test_spec_from_processor_and_model_config():
    processor = VideoMAEVideoProcessor(size={"shortest_edge": 80}, crop_size={"height": 64, "width": 64},
                                       image_mean=[0.1, 0.2, 0.3], image_std=[0.4, 0.5, 0.6])
    model = VideoMAEForVideoClassification(VideoMAEConfig(
        num_frames=12, image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, num_labels=2))
    described = describe(model, processor, 3, TrainConfig(min_scale=1.5, max_scale=2.0))
    spec = described.preprocess
    assert (spec.num_frames, spec.sample_rate, spec.resize_shortest_edge, spec.crop_size) == (12, 3, 80, (64, 64))
    assert spec.mean == pytest.approx((0.1, 0.2, 0.3)) and spec.std == pytest.approx((0.4, 0.5, 0.6))
    assert (spec.min_scale, spec.max_scale) == (1.5, 2.0)
    assert spec.clip_duration(25) == pytest.approx(12 * 3 / 25)
    assert described.input_key == "pixel_values" and described.id2label == {0: "LABEL_0", 1: "LABEL_1"}


def test_guide_recipe_clip_duration_uses_the_videos_fps():
    spec = PreprocessSpec(16, 4, 224, (224, 224), (0.5,) * 3, (0.5,) * 3)
    assert spec.clip_duration(25) == pytest.approx(2.56)  # the guide's hard-coded 30 fps would give 2.13 s


def test_temporal_subsample_matches_pytorchvideo():
    video = torch.arange(16).float().view(1, 16, 1, 1).expand(3, 16, 2, 2)
    picked = temporal_subsample(video, 8)[0, :, 0, 0]
    assert picked.tolist() == [0, 2, 4, 6, 8, 10, 12, 15]  # linspace(0, 15, 8), truncated


@pytest.mark.parametrize("train", [True, False])
def test_transform_shapes_dtypes_ranges(train):
    clip = ClipTransform(SPEC, train=train)(decoded_clip())
    assert clip.shape == (8, 3, 64, 64) and clip.dtype == torch.uint8  # normalised later, on the device
    out = Normalize(SPEC)(clip)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    low, high = (0 - 0.45) / 0.225, (1 - 0.45) / 0.225
    assert out.min() >= low - 1e-4 and out.max() <= high + 1e-4


def test_train_transform_is_random_and_one_crop_for_all_frames():
    torch.manual_seed(0)
    frame = torch.randint(0, 256, (3, 1, 96, 128)).float()
    static = frame.expand(3, 16, 96, 128)
    transform = ClipTransform(SPEC, train=True)
    out = transform(static)
    assert torch.equal(out[0], out[-1])  # same crop and scale in every frame
    assert not torch.equal(out, transform(static))


def test_eval_transform_matches_the_processor():
    """Our eval path and the saved processor give the same pixels (one preprocessing definition)."""
    processor = VideoMAEVideoProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64},
                                       image_mean=list(SPEC.mean), image_std=list(SPEC.std))
    clip = decoded_clip(frames=8).round()
    ours = Normalize(SPEC)(ClipTransform(SPEC, train=False)(clip))
    frames = clip.permute(1, 2, 3, 0).to(torch.uint8).numpy()  # (T, H, W, C) uint8, as decoded
    theirs = processor(videos=[list(frames)], return_tensors="pt")["pixel_values"][0]
    assert theirs.shape == ours.shape
    # both resize bilinearly with antialiasing; the processor rounds to uint8 after resizing
    assert (ours - theirs).abs().max() < 2.5 / 255 / min(SPEC.std)


@pytest.mark.parametrize("key", ["pixel_values", "pixel_values_videos"])
def test_collate_layout(key):
    items = [{"video": torch.zeros(8, 3, 64, 64), "label": i} for i in range(3)]
    batch = ModelSpec("any", key, SPEC).collate(items)
    assert batch[key].shape == (3, 8, 3, 64, 64)  # (B, T, C, H, W), as transformers' video models take it
    assert batch["labels"].tolist() == [0, 1, 2] and batch["labels"].dtype == torch.long


def test_one_view_is_the_eval_transform():
    frames = decoded_clip(frames=8).permute(1, 0, 2, 3).to(torch.uint8)  # (T, C, H, W)
    views = MultiCropTransform(SPEC, num_crops=1)(frames)
    assert views.shape == (1, 8, 3, 64, 64)
    assert torch.equal(views[0], ClipTransform(SPEC, train=False).frames(frames))


def test_three_crops_run_along_the_long_side():
    # 128x96 -> short side 64 -> 85x64: crops at x = 0, 10, 21
    assert crop_offsets(85, 64, 3) == [0, 10, 21] and crop_offsets(85, 64, 1) == [10]
    frames = torch.zeros(2, 3, 96, 128, dtype=torch.uint8)
    frames[..., :, :4] = 255  # a white stripe on the far left: only in the left crop
    views = MultiCropTransform(SPEC, num_crops=3)(frames)
    assert views.shape == (3, 2, 3, 64, 64)
    left, centre, right = (v[..., :, :2].float().mean().item() for v in views)
    assert left > centre == right
    tall = MultiCropTransform(SPEC, num_crops=3)(torch.zeros(2, 3, 128, 96, dtype=torch.uint8))
    assert tall.shape == (3, 2, 3, 64, 64)  # portrait: top, centre, bottom


def test_clips_spread_over_the_video():
    clip = Fraction(16, 25)
    assert spread_clip_starts(2.0, clip, 1) == [Fraction(17, 25)]  # the centre clip
    assert spread_clip_starts(2.0, clip, 3) == [0, Fraction(17, 25), Fraction(34, 25)]  # last one ends at 2 s
    assert spread_clip_starts(0.5, clip, 2) == [0, 0]  # shorter than a clip: from the start
