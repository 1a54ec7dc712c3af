from fractions import Fraction

import pytest
import torch
from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEVideoProcessor

from video_classifier.core.config import TrainConfig
from video_classifier.data.preprocessing import (
    ClipTransform,
    MultiCropTransform,
    Normalize,
    PreprocessSpec,
    crop_offsets,
    spread_clip_starts,
    temporal_subsample,
)
from video_classifier.model.model_spec import ModelSpec, describe

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


# --- Clip sampling and transforms against the definitions, computed here ---

import math  # noqa: E402

import numpy as np  # noqa: E402
from torchvision.transforms.v2 import functional as TF  # noqa: E402
from transformers.video_utils import VideoMetadata, default_sample_indices_fn  # noqa: E402

from video_classifier.data.preprocessing import (  # noqa: E402
    RandomScaleCrop,
    clip_frame_indices,
    exact_fps,
    uniform_clip_starts,
)


def frames_in_window(start: Fraction, end: Fraction, fps: Fraction, total: int, num_frames: int) -> list[int]:
    """pytorchvideo's PyAV path: the frames k with k / fps in [start, end) (at least the first one, none past
    the video's last), then its UniformTemporalSubsample: torch.linspace(0, T - 1, num_frames) (float32)
    truncated, which is not always numpy's float64 linspace (12 fps, 68 frames, [2.62, 6.697) s: 39, not 40)."""
    window = [k for k in range(total) if start <= k / fps < end] or [min(math.ceil(start * fps), total - 1)]
    picks = torch.linspace(0, len(window) - 1, num_frames).long()
    return [window[0] + int(p) for p in picks]


def test_clip_frames_are_the_windows_frames_spread_evenly():
    rng = np.random.default_rng(0)
    for fps in (Fraction(25), Fraction(30000, 1001), Fraction(12)):
        for _ in range(60):
            total = int(rng.integers(1, 90))
            start = Fraction(int(rng.integers(0, 4000)), 1000)
            end = start + Fraction(int(rng.integers(1, 3000)), 1000)
            num_frames = int(rng.integers(1, 17))
            expected = frames_in_window(start, end, fps, total, num_frames)
            assert clip_frame_indices(start, end, fps, total, num_frames) == expected, (fps, total, start, end)
    # 16 frames x stride 4 at 25 fps from 1 s: frames 25-88, every 4.2 frames
    assert clip_frame_indices(Fraction(1), Fraction(1) + Fraction(64, 25), Fraction(25), 300, 16)[:4] == [25, 29, 33, 37]
    assert clip_frame_indices(Fraction(5), Fraction(6), Fraction(25), 50, 4) == [49] * 4  # past the end: the last


def test_whole_video_frames_are_transformers_sampling():
    spec = PreprocessSpec(8, 2, 64, (64, 64), (0.5,) * 3, (0.5,) * 3, whole_video=True)
    for total in (8, 9, 30, 31, 301):
        theirs = default_sample_indices_fn(VideoMetadata(total_num_frames=total, fps=25.0), num_frames=8)
        assert spec.frame_indices(Fraction(0), Fraction(1), 25.0, total) == theirs.tolist()
    assert spec.frame_indices(Fraction(0), Fraction(1), 25.0, 3) == [0, 0, 0, 1, 1, 1, 2, 2]  # fewer than 8
    assert spec.clip_span(7.5, 25.0) == Fraction(7.5) and SPEC.clip_span(7.5, 25.0) == Fraction(16, 25)
    windowed = SPEC.frame_indices(Fraction(1), Fraction(1) + Fraction(16, 25), 25.0, 100)
    assert windowed == frames_in_window(Fraction(1), Fraction(41, 25), Fraction(25), 100, 8)


def test_frame_rates_as_exact_fractions():
    assert exact_fps(25.0) == 25 and exact_fps(30000 / 1001) == Fraction(30000, 1001)
    assert exact_fps(29.97) == Fraction(2997, 100) and exact_fps(23.976023976) == Fraction(24000, 1001)
    assert SPEC.clip_duration(30000 / 1001) == Fraction(16 * 1001, 30000)


def test_uniform_clips_are_back_to_back_while_one_fits():
    clip = Fraction(8, 25)
    for duration in (0.1, 0.32, 0.63, 0.64, 0.65, 1.2, 3.21):
        count = max(1, math.floor(Fraction(duration) / clip))
        assert uniform_clip_starts(duration, clip) == [k * clip for k in range(count)], duration


def test_spread_clips_go_from_the_first_frame_to_the_last():
    clip = Fraction(1, 2)
    for n in (2, 3, 5):
        starts = spread_clip_starts(3.0, clip, n)
        assert starts == [Fraction(5, 2) * k / (n - 1) for k in range(n)] and starts[-1] + clip == 3


def test_crops_as_torchvision_centre_crop_and_spread_to_the_ends():
    for length, crop in ((85, 64), (64, 64), (100, 37), (50, 64)):
        frame = torch.arange(length).view(1, 1, length).expand(1, 2, length)
        expected = TF.center_crop(frame, [2, crop])[0, 0, 0].item() if length >= crop else 0
        assert crop_offsets(length, crop, 1) == [expected]
    assert crop_offsets(100, 37, 2) == [0, 63] and crop_offsets(100, 37, 4) == [0, 21, 42, 63]
    assert crop_offsets(50, 64, 3) == [0, 0, 0]  # no room: every crop at 0


def test_temporal_subsample_is_linspace_truncated():
    for t, n in ((16, 8), (5, 8), (1, 4), (30, 7)):
        video = torch.arange(t).float().view(1, t, 1, 1).expand(3, t, 2, 2)
        expected = torch.linspace(0, t - 1, n).long().tolist()  # pytorchvideo's UniformTemporalSubsample
        assert temporal_subsample(video, n)[0, :, 0, 0].long().tolist() == expected
    with pytest.raises(ValueError, match="empty clip"):
        temporal_subsample(torch.zeros(3, 0, 2, 2), 4)


def test_normalize_is_torchvisions_on_x_over_255():
    spec = PreprocessSpec(8, 2, 64, (64, 64), (0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    frames = torch.randint(0, 256, (2, 4, 3, 5, 6), dtype=torch.uint8)
    ours = Normalize(spec)(frames)
    theirs = TF.normalize(frames.float() / 255, list(spec.mean), list(spec.std))
    assert ours.dtype == torch.float32 and torch.allclose(ours, theirs, atol=1e-6)
    assert torch.equal(Normalize(spec)(frames), ours)  # constants cached per device: the same result again
    with pytest.raises(TypeError, match="uint8"):
        Normalize(spec)(frames.float())


def draws(seed: int, sizes: tuple[int, int], height: int, width: int, box) -> tuple[int, int, int, bool]:
    """RandomScaleCrop's draws for `seed`, in its order: short side, then top and left of the box that
    side gives (box(side)), then the flip."""
    torch.manual_seed(seed)
    side = int(torch.randint(sizes[0], sizes[1] + 1, ()))
    box_h, box_w = box(side)
    top, left = int(torch.randint(0, height - box_h + 1, ())), int(torch.randint(0, width - box_w + 1, ()))
    return side, top, left, bool(torch.rand(()) < 0.5)


def test_random_scale_crop_resizes_the_box_the_scale_gives():
    """Short side s in [min, max] x the crop's: the box of the source that becomes the crop is crop x
    short / s (whole pixels, within the frame); resize_to: 1 / (s / crop) of each side."""
    frames = torch.randint(0, 256, (2, 3, 96, 128), dtype=torch.uint8)
    spec = PreprocessSpec(2, 2, 64, (64, 48), (0.5,) * 3, (0.5,) * 3, min_scale=1.0, max_scale=1.5,
                          horizontal_flip=True)
    crop = RandomScaleCrop(spec)
    assert crop.sizes == (48, 72)
    flips = 0
    for seed in range(12):
        def box(side):
            return min(96, round(64 * 96 / side)), min(128, round(48 * 96 / side))
        side, top, left, flip = draws(seed, crop.sizes, 96, 128, box)
        h, w = box(side)
        expected = TF.resized_crop(frames, top, left, h, w, [64, 48], antialias=True)
        torch.manual_seed(seed)
        out = crop(frames)
        assert torch.equal(out, expected.flip(-1) if flip else expected), seed
        flips += flip
    assert 0 < flips < 12
    squashed = PreprocessSpec(2, 2, 64, (64, 64), (0.5,) * 3, (0.5,) * 3, min_scale=1.0, max_scale=2.0,
                              resize_to=(64, 64))
    for seed in range(6):
        def box(side):
            return min(96, round(96 / (side / 64))), min(128, round(128 / (side / 64)))
        side, top, left, _ = draws(seed, RandomScaleCrop(squashed).sizes, 96, 128, box)
        h, w = box(side)
        torch.manual_seed(seed)
        assert torch.equal(RandomScaleCrop(squashed)(frames), TF.resized_crop(frames, top, left, h, w, [64, 64],
                                                                              antialias=True)), seed


def test_eval_views_are_torchvisions_resize_then_crops():
    frames = torch.randint(0, 256, (2, 3, 96, 128), dtype=torch.uint8)
    resized = TF.resize(frames, 64, antialias=True)  # 64 x 85
    views = MultiCropTransform(SPEC, num_crops=3)(frames)
    for view, left in zip(views, (0, 10, 21)):
        assert torch.equal(view, resized[..., :, left:left + 64])
    tall = frames.transpose(-1, -2).contiguous()  # 128 x 96 -> 85 x 64: crops from top to bottom
    resized = TF.resize(tall, 64, antialias=True)
    for view, top in zip(MultiCropTransform(SPEC, num_crops=3)(tall), (0, 10, 21)):
        assert torch.equal(view, resized[..., top:top + 64, :])
    fixed = PreprocessSpec(8, 2, 64, (48, 64), (0.5,) * 3, (0.5,) * 3, resize_to=(48, 64))
    (view,) = MultiCropTransform(fixed, num_crops=1)(frames)
    assert torch.equal(view, TF.resize(frames, [48, 64], antialias=True))


def test_clip_transform_subsamples_rounds_and_permutes():
    clip = decoded_clip(frames=16) + 0.4  # whole numbers + 0.4: rounded down
    clip[0, 0, 0, 0] = 300.0  # past 255: clamped
    out = ClipTransform(SPEC, train=False)(clip)
    picks = torch.linspace(0, 15, 8).long()
    frames = clip[:, picks].permute(1, 0, 2, 3).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(out, MultiCropTransform(SPEC, 1)(frames)[0])
    torch.manual_seed(3)
    trained = ClipTransform(SPEC, train=True)(clip)
    torch.manual_seed(3)
    assert torch.equal(trained, RandomScaleCrop(SPEC)(frames)) and trained.is_contiguous()


def test_a_window_between_two_frames_takes_the_next_frame():
    """[0.01, 0.02) s at 25 fps holds no frame (frames at 0, 0.04 s): the clip repeats frame 1, the first at
    or after its start; a window past the end repeats the last frame."""
    assert clip_frame_indices(Fraction(1, 100), Fraction(2, 100), Fraction(25), 10, 3) == [1, 1, 1]
    assert frames_in_window(Fraction(1, 100), Fraction(2, 100), Fraction(25), 10, 3) == [1, 1, 1]
    assert clip_frame_indices(Fraction(3), Fraction(4), Fraction(25), 10, 2) == [9, 9]


def test_fps_fractions_keep_denominators_up_to_1001():
    for fps in (1003 / 1002, 25.000001, 59.94, 1 / 3):
        assert exact_fps(fps).denominator <= 1001 and abs(float(exact_fps(fps)) - fps) < 1e-3


def test_an_empty_clip_is_a_one_line_error():
    with pytest.raises(ValueError, match="^empty clip: the decoder returned no frames$"):
        temporal_subsample(torch.zeros(3, 0, 2, 2), 4)


def test_a_video_of_exactly_two_clips_has_two():
    assert uniform_clip_starts(0.5, Fraction(1, 4)) == [0, Fraction(1, 4)]  # 0.5 s is exact in binary
    assert uniform_clip_starts(0.4999, Fraction(1, 4)) == [0]


def test_decoded_values_outside_0_255_are_clamped_not_wrapped():
    clip = torch.full((3, 8, 64, 64), 100.0)
    clip[0, :, 20:40, 20:40] = 256.3  # rounds to 256: 255, not 0
    clip[1, :, 20:40, 20:40] = 300.0
    clip[2, :, 20:40, 20:40] = -3.0  # 0, not 253
    out = ClipTransform(SPEC, train=False)(clip)  # 64 x 64 already: the centre crop is the frame
    assert out[0, :, 30, 30].tolist() == [255, 255, 0] and out[0, :, 5, 5].tolist() == [100, 100, 100]


def test_equal_room_slides_along_the_width():
    """After the resize both sides have 16 px to spare: the crops go left to right, as when the width has more."""
    spec = PreprocessSpec(2, 2, 64, (48, 64), (0.5,) * 3, (0.5,) * 3)
    frames = torch.randint(0, 256, (2, 3, 96, 120), dtype=torch.uint8)
    resized = TF.resize(frames, 64, antialias=True)  # 64 x 80
    views = MultiCropTransform(spec, num_crops=3)(frames)
    for view, left in zip(views, (0, 8, 16)):
        assert torch.equal(view, resized[..., 8:56, left:left + 64])


def test_the_processors_resample_filter_is_used():
    from torchvision.transforms import InterpolationMode

    spec = PreprocessSpec(2, 2, 64, (64, 64), (0.5,) * 3, (0.5,) * 3, interpolation=InterpolationMode.BICUBIC)
    frames = torch.randint(0, 256, (2, 3, 96, 128), dtype=torch.uint8)
    resized = TF.resize(frames, 64, interpolation=InterpolationMode.BICUBIC, antialias=True)
    assert torch.equal(MultiCropTransform(spec, 1)(frames)[0], resized[..., :, 10:74])
    assert not torch.equal(resized, TF.resize(frames, 64, antialias=True))
    torch.manual_seed(0)
    crop = RandomScaleCrop(spec)(frames)  # scale 1: the box is 96 x 96 of the frame, at a drawn left
    torch.manual_seed(0)
    torch.randint(64, 65, ())
    top, left = int(torch.randint(0, 1, ())), int(torch.randint(0, 33, ()))
    assert torch.equal(crop, TF.resized_crop(frames, top, left, 96, 96, [64, 64],
                                             interpolation=InterpolationMode.BICUBIC, antialias=True))


def test_scale_range_is_the_crops_short_side_times_min_and_max():
    spec = PreprocessSpec(2, 2, 64, (64, 48), (0.5,) * 3, (0.5,) * 3, min_scale=1.25, max_scale=2.0)
    assert RandomScaleCrop(spec).sizes == (60, 96)
