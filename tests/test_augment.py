"""The VideoMAE recipe's augmentation (augment.py): RandAugment and random erasing draw once per clip and act on
every frame alike; repeated augmentation makes k differently augmented clips from one decode, and the batch
counts clips; each option refused in one line where it cannot apply; a run with them trains."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import tiny_config_dict, write_config
from torchvision import tv_tensors
from torchvision.transforms import v2

import train as train_script
from video_classifier.core.config import Config, _build
from video_classifier.core.errors import UserError
from video_classifier.data.augment import ClipAugment
from video_classifier.data.datasets import ClipDataset
from video_classifier.data.manifest import VideoRecord
from video_classifier.data.preprocessing import ClipTransform, PreprocessSpec

MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
SPEC = PreprocessSpec(num_frames=4, sample_rate=2, resize_shortest_edge=32, crop_size=(32, 32), mean=MEAN, std=STD,
                      min_scale=1.0, max_scale=1.25)


def clip(seed: int = 0, frames: int = 4) -> torch.Tensor:
    return torch.randint(0, 256, (frames, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_rand_augment_is_torchvisions_with_one_draw_for_every_frame():
    """Each frame of the augmented clip is what torchvision's RandAugment (4 ops, magnitude bin 7 of 0-10) makes of
    that frame alone from the same random state: the clip's operations and magnitudes were drawn once."""
    augment = ClipAugment((4, 7), 0.0, MEAN, STD)
    frames = clip()
    changed = 0
    for seed in range(12):
        torch.manual_seed(seed)
        out = augment(frames)
        assert out.dtype == torch.uint8 and out.shape == frames.shape
        for t in range(len(frames)):
            torch.manual_seed(seed)
            alone = v2.RandAugment(num_ops=4, magnitude=7, num_magnitude_bins=11)(tv_tensors.Image(frames[t]))
            assert torch.equal(out[t], alone), (seed, t)
        changed += not torch.equal(out, frames)
    assert changed >= 10  # 4 operations a clip: nearly every clip changes (Identity alone leaves one as it was)


def test_random_erasing_is_one_box_of_noise_the_same_in_every_frame():
    augment = ClipAugment(None, 1.0, MEAN, STD)
    frames = torch.full((4, 3, 32, 32), 7, dtype=torch.uint8)  # 7: far from the noise's values, mostly
    boxes = []
    for seed in range(20):
        torch.manual_seed(seed)
        out = augment(frames)
        erased = (out != frames).any(1)  # (T, H, W)
        assert all(torch.equal(erased[0], erased[t]) for t in range(4))  # the same box in every frame
        assert torch.equal(out[0], out[3])  # and the same noise
        rows, cols = erased[0].any(1).nonzero(), erased[0].any(0).nonzero()
        box = out[0][:, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        boxes.append(box.float())
        assert 0.01 < erased[0].float().mean() < 0.4  # 2-33% of the frame (a noise pixel may equal 7)
    noise = torch.cat([b.flatten() for b in boxes])
    # N(0, 1) after normalisation: mean 0.45 x 255 = 115, std 0.225 x 255 = 57 in pixels (clamped to 0-255)
    assert noise.mean() == pytest.approx(115, abs=6) and noise.std() == pytest.approx(57, abs=6)


def test_random_erasing_at_0_and_no_rand_augment_leave_a_clip_alone():
    assert not ClipAugment(None, 0.0, MEAN, STD)
    frames = clip(1)
    assert torch.equal(ClipAugment(None, 0.0, MEAN, STD)(frames), frames)


class Recorded:
    """A decoder that counts its calls and gives a fixed, textured window."""

    def __init__(self):
        self.calls = 0

    def __call__(self, path, indices, fps):
        self.calls += 1
        return clip(2, len(indices))


def test_repeated_augmentation_makes_k_distinct_clips_from_one_decode():
    spec = replace(SPEC, repeated_augmentation=3, rand_augment=(2, 9))
    records = [VideoRecord(f"train/A/v{i}.avi", "A", "train", str(i), 30, 25.0, 1.2) for i in range(4)]
    decoder = Recorded()
    dataset = ClipDataset(records, ".", {"A": 0}, spec, train=True, decoder=decoder)
    torch.manual_seed(0)
    item = dataset[0]
    assert decoder.calls == 1 and item["video"].shape == (3, 4, 3, 32, 32)
    assert not torch.equal(item["video"][0], item["video"][1]) and not torch.equal(item["video"][1], item["video"][2])
    from video_classifier.model.model_spec import ModelSpec

    batch = ModelSpec("videomae", "pixel_values", spec).collate([item, dataset[1]])
    assert batch["pixel_values"].shape == (6, 4, 3, 32, 32) and batch["labels"].tolist() == [0] * 6
    assert batch["index"].tolist() == [0, 0, 0, 1, 1, 1]
    evaluation = ClipDataset(records, ".", {"A": 0}, spec, train=False, decoder=decoder)
    assert evaluation[0]["video"].shape == (4, 3, 32, 32)  # evaluation: one centre clip, not augmented
    assert torch.equal(evaluation[0]["video"], ClipTransform(SPEC, train=False).frames(clip(2)))


@pytest.mark.parametrize("train, message", [
    ({"repeated_augmentation": 3, "batch_size": 8}, r"train.repeated_augmentation = 3: must be >= 1 and divide"),
    ({"repeated_augmentation": 0}, r"train.repeated_augmentation = 0"),
    ({"random_erasing": 1.5}, r"train.random_erasing = 1.5: a probability"),
    ({"rand_augment": {"magnitude": 12}}, r"train.rand_augment.magnitude = 12: must be 0-10"),
    ({"rand_augment": {"ops": 2}}, r"unknown config key train.rand_augment.ops"),
])
def test_bad_augmentation_settings_are_one_line(train, message):
    with pytest.raises(UserError, match=message):
        _build(Config, {"train": train}, "")


@pytest.mark.parametrize("data, train, message", [
    ({"backend": "pytorchvideo"}, {"repeated_augmentation": 2},
     r"train.repeated_augmentation: 2 .* data.backend: pytorchvideo reads one clip per video"),
    ({"source": "shards"}, {"repeated_augmentation": 2},
     r"train.repeated_augmentation: 2 .* data.source: shards reads one clip per video"),
    ({}, {"freeze": "backbone", "cache_features": True, "max_scale": 1.0, "random_erasing": 0.25},
     r"train.cache_features needs train.random_erasing: 0"),
    ({}, {"freeze": "backbone", "cache_features": True, "max_scale": 1.0, "rand_augment": {}},
     r"train.cache_features needs train.rand_augment: null"),
])
def test_where_an_option_cannot_apply_it_is_refused_in_one_line(tmp_path, capsys, data, train, message):
    config = tiny_config_dict(tmp_path)
    config["data"].update(data)
    config["train"].update(train)
    with pytest.raises(SystemExit):
        train_script.main(["--config", str(write_config(tmp_path / "config.yaml", config))])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert re.search(message, err), err


def test_a_run_with_rand_augment_erasing_and_two_clips_a_video_trains(tiny_workspace, tmp_path, capsys):
    data = tiny_config_dict(tmp_path)
    data["data"]["root"] = str(tiny_workspace / "data")
    data["train"].update(epochs=1, rand_augment={}, random_erasing=0.25, repeated_augmentation=2)
    data["eval"] = {"num_clips": 1, "num_crops": 1}
    train_script.main(["--config", str(write_config(tmp_path / "config.yaml", data))])
    out = capsys.readouterr().out
    # 16 training videos, 2 videos (4 clips) a batch: 8 steps an epoch, twice batch_size 4's usual 4
    assert "batch 4 clips (2 videos x 2 augmented clips of each), 8 steps/epoch x 1 epochs = 8 steps" in out
    metrics = json.loads((Path(data["train"]["output_dir"]) / "metrics.json").read_text())
    assert metrics["test"]["videos"] == 8
