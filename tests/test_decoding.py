"""Our decoders and dataset give the frames and tensors of the pytorchvideo/PyAV reference."""

import os
import random
from fractions import Fraction

import pytest
import torch
from pytorchvideo.data import make_clip_sampler
from pytorchvideo.data.encoded_video import EncodedVideo

from video_classifier.config import DataConfig
from video_classifier.data import ClipDataset, build_datasets, pytorchvideo_dataset
from video_classifier.decoding import choose_decoder, decode_pyav, decode_torchcodec, torchcodec_problem
from video_classifier.errors import UserError
from video_classifier.prepare import load_prepared
from video_classifier.preprocessing import (ClipTransform, PreprocessSpec, clip_frame_indices, exact_fps,
                                            temporal_subsample, uniform_clip_starts)

SPEC = PreprocessSpec(num_frames=4, sample_rate=2, resize_shortest_edge=32, crop_size=(32, 32),
                      mean=(0.45,) * 3, std=(0.225,) * 3, min_scale=1.0, max_scale=1.5, horizontal_flip=True)

DECODERS = [pytest.param(decode_pyav, id="pyav"),
            pytest.param(decode_torchcodec, id="torchcodec",
                         marks=[pytest.mark.torchcodec,
                                pytest.mark.skipif(torchcodec_problem() is not None, reason="torchcodec does not load")])]


@pytest.fixture(scope="module")
def prepared(tiny_workspace):
    root = tiny_workspace / "data"
    label2id, records = load_prepared(root)
    return root, label2id, records


def reference_frames(path, start, end, num_frames) -> torch.Tensor:
    """pytorchvideo's PyAV decoding of [start, end) + UniformTemporalSubsample: (T, C, H, W) uint8."""
    clip = EncodedVideo.from_path(str(path), decode_audio=False, decoder="pyav").get_clip(start, end)["video"]
    return temporal_subsample(clip, num_frames).permute(1, 0, 2, 3).to(torch.uint8)


@pytest.mark.parametrize("decoder", DECODERS)
def test_decoders_give_the_reference_frames_exactly(prepared, decoder):
    root, _, records = prepared
    for record in records[:6]:
        fps, length = exact_fps(record.fps), SPEC.clip_duration(record.fps)
        starts = uniform_clip_starts(record.duration, length) + [Fraction(0.37), Fraction(record.duration) - length]
        for start in starts:
            indices = clip_frame_indices(start, start + length, fps, record.frames, SPEC.num_frames)
            ours = decoder(root / record.path, indices)
            assert ours.dtype == torch.uint8 and ours.shape[:2] == (SPEC.num_frames, 3)
            # mpeg4 in AVI: both decoders run FFmpeg's decoder and RGB conversion, so exactly equal
            assert torch.equal(ours, reference_frames(root / record.path, start, start + length, SPEC.num_frames))


def test_clip_arithmetic():
    fps = exact_fps(25.0)
    assert SPEC.clip_duration(25.0) == Fraction(8, 25)
    assert clip_frame_indices(Fraction(0), Fraction(8, 25), fps, 30, 4) == [0, 2, 4, 7]  # linspace(0, 7, 4)
    assert clip_frame_indices(Fraction(1), Fraction(1) + Fraction(8, 25), fps, 30, 4) == [25, 26, 27, 29]  # clamped
    assert exact_fps(29.97002997002997) == Fraction(30000, 1001)
    assert uniform_clip_starts(1.2, Fraction(8, 25)) == [0, Fraction(8, 25), Fraction(16, 25)]


def test_eval_items_equal_the_pytorchvideo_dataset(prepared):
    root, label2id, records = prepared
    val = [r for r in records if r.split == "val"]
    reference = list(pytorchvideo_dataset(val, root, label2id, SPEC, train=False))
    ours = ClipDataset(val, root, label2id, SPEC, train=False, decoder=decode_pyav)
    assert len(ours) == len(reference)
    for i, expected in enumerate(reference):
        item = ours[i]
        assert item["label"] == expected["label"]
        assert torch.equal(item["video"], expected["video"])


@pytest.mark.parametrize("decoder", DECODERS)
def test_train_items_equal_the_reference_path(prepared, decoder):
    """Same random state -> the same clip window, scale, crop and flip, and the same tensor."""
    root, label2id, records = prepared
    train = [r for r in records if r.split == "train"][:4]
    ours = ClipDataset(train, root, label2id, SPEC, train=True, decoder=decoder)
    sampler = make_clip_sampler("random", SPEC.clip_duration(25.0))
    transform = ClipTransform(SPEC, train=True)
    for i, record in enumerate(train):
        random.seed(i), torch.manual_seed(i)
        start, end, *_ = sampler(0, Fraction(record.duration), {})
        video = EncodedVideo.from_path(str(root / record.path), decode_audio=False, decoder="pyav").get_clip(start, end)
        expected = transform(video["video"])
        random.seed(i), torch.manual_seed(i)
        assert torch.equal(ours[i]["video"], expected)


def test_dataset_lengths_and_items(prepared):
    root, label2id, records = prepared
    train = [r for r in records if r.split == "train"]
    datasets, how = build_datasets(DataConfig(root=str(root), decoder="pyav"),
                                   {"train": train, "test": [r for r in records if r.split == "test"]}, label2id, SPEC)
    assert "native ClipDataset, pyav decoder" in how
    assert len(datasets["train"]) == len(train)
    # 1.2 s videos, 0.32 s clips: 3 uniform clips each
    assert len(datasets["test"]) == 3 * len([r for r in records if r.split == "test"])
    item = datasets["test"][4]
    assert (item["video_index"], item["clip_index"]) == (1, 1)
    assert item["video"].shape == (4, 3, 32, 32) and item["video"].dtype == torch.uint8


@pytest.mark.torchcodec
def test_decoder_choice_tells_the_truth(prepared):
    """`auto` picks torchcodec exactly when torchcodec really decodes a file here.

    CI runs the suite once with FFmpeg's libraries hidden and once with them, and says which
    through EXPECT_TORCHCODEC (1 or 0), so a probe that lies fails there."""
    root, _, records = prepared
    assert choose_decoder("pyav").name == "pyav"
    expected = os.environ.get("EXPECT_TORCHCODEC")
    if expected is not None:
        assert (torchcodec_problem() is None) == (expected == "1"), torchcodec_problem()
    if torchcodec_problem() is None:
        assert choose_decoder("auto").name == "torchcodec"
        assert decode_torchcodec(root / records[0].path, [0, 1]).shape[:2] == (2, 3)
    else:
        auto = choose_decoder("auto")
        assert auto.name == "pyav" and "torchcodec does not load here" in auto.reason
        with pytest.raises(UserError, match="data.decoder is torchcodec but it does not load"):
            choose_decoder("torchcodec")
        with pytest.raises(Exception):  # the probe said no: so does a real decode
            decode_torchcodec(root / records[0].path, [0, 1])


def test_pytorchvideo_backend_still_builds(prepared):
    root, label2id, records = prepared
    datasets, how = build_datasets(DataConfig(root=str(root), backend="pytorchvideo"),
                                   {"val": [r for r in records if r.split == "val"]}, label2id, SPEC)
    assert how.startswith("pytorchvideo LabeledVideoDataset")
    assert next(iter(datasets["val"]))["video"].shape == (4, 3, 32, 32)
