"""Our decoders and datasets give the frames of pytorchvideo's PyAV path, resized, cropped and flipped as
torchvision's functional ops do it when written from the definition (tests/references.py)."""

import os
import random
from fractions import Fraction

import pytest
import torch
from pytorchvideo.data import LabeledVideoDataset, make_clip_sampler
from references import centre_view, ffmpeg_frames, window_frames
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from video_classifier.core.config import DataConfig
from video_classifier.core.errors import UserError
from video_classifier.data.datasets import ClipDataset, build_datasets, pytorchvideo_dataset
from video_classifier.data.decoding import choose_decoder, decode_pyav, decode_torchcodec, torchcodec_problem
from video_classifier.data.manifest import load_prepared
from video_classifier.data.preprocessing import PreprocessSpec, clip_frame_indices, exact_fps, uniform_clip_starts

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
            assert torch.equal(ours, window_frames(root / record.path, start, start + length, SPEC.num_frames))


@pytest.mark.torchcodec  # FFmpeg's command line needs the OS's FFmpeg libraries, as torchcodec does
@pytest.mark.ffmpeg
@pytest.mark.parametrize("decoder", DECODERS)
def test_decoders_give_the_frames_of_ffmpegs_command_line(prepared, decoder):
    """Every frame of a few videos, by index, is what `ffmpeg -i FILE -f rawvideo -pix_fmt rgb24 -` writes: a
    second reference beside pytorchvideo's, sharing no Python code with it or with us."""
    root, _, records = prepared
    for record in records[:4]:
        expected = torch.from_numpy(ffmpeg_frames(root / record.path).copy())  # (N, H, W, 3)
        assert len(expected) == record.frames == 30  # 1.2 s at 25 fps
        ours = decoder(root / record.path, list(range(record.frames)))
        assert torch.equal(ours.permute(0, 2, 3, 1), expected), record.path


def test_clip_arithmetic():
    fps = exact_fps(25.0)
    assert SPEC.clip_duration(25.0) == Fraction(8, 25)
    assert clip_frame_indices(Fraction(0), Fraction(8, 25), fps, 30, 4) == [0, 2, 4, 7]  # linspace(0, 7, 4)
    assert clip_frame_indices(Fraction(1), Fraction(1) + Fraction(8, 25), fps, 30, 4) == [25, 26, 27, 29]  # clamped
    assert exact_fps(29.97002997002997) == Fraction(30000, 1001)
    assert uniform_clip_starts(1.2, Fraction(8, 25)) == [0, Fraction(8, 25), Fraction(16, 25)]


def eval_reference(item: dict) -> dict:
    """A pytorchvideo item -> its evaluation view written from the definition with torchvision's functional ops:
    SPEC.num_frames frames at linspace(0, T - 1) truncated, the short side resized to 32 (bilinear,
    antialiased), the centre 32 x 32 crop; (C, T, H, W) float -> (T, C, H, W) uint8."""
    video = item["video"]
    frames = video[:, torch.linspace(0, video.shape[1] - 1, SPEC.num_frames).long()].permute(1, 0, 2, 3)
    return {"video": centre_view(frames.to(torch.uint8), 32, (32, 32)), "label": item["label"]}


def test_eval_items_equal_the_reference(prepared):
    """Every uniform clip of every val video, as pytorchvideo's LabeledVideoDataset (uniform clip sampler, PyAV)
    decodes it and torchvision's functional ops resize and crop it; both our datasets (native and the
    pytorchvideo backend) give exactly that."""
    root, label2id, records = prepared
    val = [r for r in records if r.split == "val"]
    reference = list(LabeledVideoDataset(
        [(str(root / r.path), {"label": label2id[r.label]}) for r in val],
        make_clip_sampler("uniform", Fraction(SPEC.num_frames * SPEC.sample_rate, 25)),  # 4 frames x 2 at 25 fps
        video_sampler=torch.utils.data.SequentialSampler, transform=eval_reference, decode_audio=False,
        decoder="pyav"))
    assert len(reference) == 3 * len(val)  # 1.2 s videos, 0.32 s clips: 3 whole clips each
    ours = ClipDataset(val, root, label2id, SPEC, train=False, decoder=decode_pyav)
    backend = list(pytorchvideo_dataset(val, root, label2id, SPEC, train=False))
    assert len(ours) == len(backend) == len(reference)
    for i, expected in enumerate(reference):
        for item in (ours[i], backend[i]):
            assert item["label"] == expected["label"]
            assert item["video"].shape == (4, 3, 32, 32) and torch.equal(item["video"], expected["video"])


def train_reference(frames: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """SPEC's training augmentation written from its definition (preprocessing.RandomScaleCrop's docstring) with
    torchvision's functional ops, drawing from torch's generator in the order the product draws: a short side
    in [32 x min_scale, 32 x max_scale] px, the 32 px crop's box mapped back to the frame (32 px / that scale),
    its top, its left, then a horizontal flip with probability 1/2. (T, C, H, W) uint8 -> ((T, C, 32, 32),
    whether it flipped)."""
    height, width = frames.shape[-2:]
    short_side = int(torch.randint(round(32 * SPEC.min_scale), round(32 * SPEC.max_scale) + 1, ()))
    box = min(height, width, round(32 * min(height, width) / short_side))  # square: the crop is 32 x 32
    top = int(torch.randint(0, height - box + 1, ()))
    left = int(torch.randint(0, width - box + 1, ()))
    view = F.resize(frames[..., top:top + box, left:left + box], [32, 32], interpolation=InterpolationMode.BILINEAR,
                    antialias=True)
    flip = bool(torch.rand(()) < 0.5)
    return (F.horizontal_flip(view) if flip else view), flip


@pytest.mark.parametrize("decoder", DECODERS)
def test_train_items_equal_the_reference_path(prepared, decoder):
    """Same random state -> the same clip window (pytorchvideo's random clip sampler), the same frames
    (pytorchvideo's PyAV decoding, subsampled evenly) and the same scale, crop and flip (train_reference).
    Not checked here: the order in which the product draws its random numbers, which the reference copies."""
    root, label2id, records = prepared
    train = [r for r in records if r.split == "train"][:8]
    ours = ClipDataset(train, root, label2id, SPEC, train=True, decoder=decoder)
    sampler = make_clip_sampler("random", Fraction(SPEC.num_frames * SPEC.sample_rate, 25))  # 0.32 s at 25 fps
    flipped = []
    for i, record in enumerate(train):
        random.seed(i), torch.manual_seed(i)
        start, end, *_ = sampler(0, Fraction(record.duration), {})
        frames = window_frames(root / record.path, start, end, SPEC.num_frames)
        expected, flip = train_reference(frames)
        flipped.append(flip)
        random.seed(i), torch.manual_seed(i)
        assert torch.equal(ours[i]["video"], expected), record.path
    assert 0 < sum(flipped) < len(flipped)  # these seeds draw views both flipped and not


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
        with pytest.raises(Exception):  # noqa: B017 (the probe said no: so does a real decode, whichever way)
            decode_torchcodec(root / records[0].path, [0, 1])


def test_pytorchvideo_backend_still_builds(prepared):
    root, label2id, records = prepared
    datasets, how = build_datasets(DataConfig(root=str(root), backend="pytorchvideo"),
                                   {"val": [r for r in records if r.split == "val"]}, label2id, SPEC)
    assert how.startswith("pytorchvideo LabeledVideoDataset")
    assert next(iter(datasets["val"]))["video"].shape == (4, 3, 32, 32)
