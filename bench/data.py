"""Training clips per second: the Hugging Face video-classification guide's pipeline against ours.

    .venv/bin/python bench/data.py [--clips 160] [--guide-clips 40] [--workers 2] [--threads N] [--segments]

Every row reads the same generated videos (320x240, 25 fps, 7 s: UCF101's shape)
and runs in this process, except the DataLoader rows. Rows:
  guide             pytorchvideo's Ucf101 + the guide's train transform, as the guide writes them
  ours, <decoder>   ClipDataset(train=True): decode the sampled frames, then scale, crop, flip, as uint8
                    (normalising is done per batch on the model's device: bench/train.py counts it)
  decode only       the same frames as "ours", decoded and nothing else: the limit for "ours"
  RandAugment       "ours" with the VideoMAE recipe's RandAugment (4 ops, magnitude 7) and random erasing
                    (0.25) on each clip (augment.py)
  k = 2             "ours" with repeated augmentation: 2 clips (each its own crop and flip) from each
                    decoded window; clips counted
  DataLoader        clips/s through torch's DataLoader with worker processes
  shards            the same videos as tar shards (prepare_data.py --shards, 16 MB each), streamed by
                    ShardClipDataset (a 16-video shuffle buffer) with the default decoder
  segments          clips of segments of one 10-minute recording (UCF101's shape, mpeg4 AVI), read in place by
                    seeking (a list with start/end), beside clips of the same parts written as files of their own
                    (a cut copy, the same codec and rate): `--segments` runs these rows alone
  hf stream         the same videos as a videofolder dataset on a local stand-in Hub over HTTP
                    (tests/fake_hub.py), streamed through `datasets` by HfStreamClipDataset
                    (data.hf_dataset.streaming: each video fetched whole, a 16-row shuffle buffer)
A benchmark, not a test: it prints numbers and checks none.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # as `python train.py` run from the root has it

import torch  # noqa: E402
import torchvision  # noqa: E402
import torchvision.transforms.functional  # noqa: E402
from machine import cpu_name  # noqa: E402  (bench/machine.py)

# Compatibility shim, in this benchmark only (the project never imports
# pytorchvideo.transforms): pytorchvideo 0.1.5 imports the module
# torchvision.transforms.functional_tensor, which torchvision has removed. The
# import is all it needs for the guide's transforms; only AugMix/RandAugment
# would call F_t.affine, whose old signature this alias does not have.
sys.modules.setdefault("torchvision.transforms.functional_tensor", torchvision.transforms.functional)

import pytorchvideo.data  # noqa: E402
from pytorchvideo.transforms import (  # noqa: E402
    ApplyTransformToKey,
    Normalize,
    RandomShortSideScale,
    UniformTemporalSubsample,
)
from torchvision.transforms import Compose, Lambda, RandomCrop, RandomHorizontalFlip  # noqa: E402

from video_classifier.core.config import DataConfig, HfDatasetConfig, SyntheticConfig  # noqa: E402
from video_classifier.data.datasets import ClipDataset  # noqa: E402
from video_classifier.data.decoding import (  # noqa: E402
    Decoder,
    choose_decoder,
    decode_pyav,
    decode_torchcodec,
    torchcodec_problem,
)
from video_classifier.data.hf_source import HfStreamClipDataset  # noqa: E402
from video_classifier.data.manifest import VideoRecord, load_prepared, segment_frames  # noqa: E402
from video_classifier.data.prepare import prepare  # noqa: E402
from video_classifier.data.preprocessing import PreprocessSpec, clip_frame_indices, exact_fps  # noqa: E402
from video_classifier.data.shards import ShardClipDataset, write_shards  # noqa: E402
from video_classifier.data.synthetic import MOTIONS, VideoSpec, render, write_long_video, write_video  # noqa: E402
from video_classifier.data.user_videos import check_video  # noqa: E402
from video_classifier.model.model_spec import ModelSpec  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from fake_hub import serve_hub  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "ucf_shape"
# 8 groups x 8 classes = 64 train videos (about 90 s to make, once): one pass of
# the guide's iterable dataset gives 64 clips, its DataLoader row's warm-up
# batches and timed clips must fit in them
VIDEOS = SyntheticConfig(width=320, height=240, fps=25, seconds=7.0, train_groups=8, val_groups=1, test_groups=1,
                         clips_per_group=1, seed=0)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet, as videomae-base's processor
NUM_FRAMES, SAMPLE_RATE, CROP = 16, 4, 224
BATCH = 8
DECODERS: dict[str, Decoder] = {"pyav": decode_pyav, "torchcodec": decode_torchcodec}


def seed() -> None:
    """The same clip windows and augmentations for every row (Python's random draws the windows)."""
    random.seed(0)
    torch.manual_seed(0)


def _scale_to_unit(x: torch.Tensor) -> torch.Tensor:
    return x / 255.0


def guide_dataset(root: Path, spec: PreprocessSpec | None = None) -> pytorchvideo.data.LabeledVideoDataset:
    """The guide's train dataset, verbatim but for paths: it hard-codes fps 30 in the clip duration.

    With `spec`, the guide's recipe for another model: its frames, stride, mean, std and crop, and the
    short side drawn from the same range as ours (the guide's 256-320 is 224 x [1.14, 1.43])."""
    frames, stride, mean, std = NUM_FRAMES, SAMPLE_RATE, MEAN, STD
    crop, sizes, flip = CROP, (256, 320), True
    if spec is not None:
        frames, stride, mean, std, crop = spec.num_frames, spec.sample_rate, spec.mean, spec.std, spec.crop_size
        short = min(spec.crop_size)
        sizes, flip = (round(short * spec.min_scale), round(short * spec.max_scale)), spec.horizontal_flip
    train_transform = Compose([
        ApplyTransformToKey(
            key="video",
            transform=Compose([
                UniformTemporalSubsample(frames),
                Lambda(_scale_to_unit),  # a named function: DataLoader workers pickle it where they spawn
                Normalize(mean, std),
                RandomShortSideScale(min_size=sizes[0], max_size=sizes[1]),
                RandomCrop(crop),
                *([RandomHorizontalFlip(p=0.5)] if flip else []),
            ]),
        ),
    ])
    return pytorchvideo.data.Ucf101(
        data_path=str(root / "train"),
        clip_sampler=pytorchvideo.data.make_clip_sampler("random", frames * stride / 30),
        decode_audio=False,
        transform=train_transform,
    )


def guide_collate(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The guide's collate_fn: (C, T, H, W) -> (B, T, C, H, W)."""
    return {
        "pixel_values": torch.stack([e["video"].permute(1, 0, 2, 3) for e in examples]),
        "labels": torch.tensor([e["label"] for e in examples]),
    }


def run_guide(dataset: pytorchvideo.data.LabeledVideoDataset, n: int) -> None:
    # a pass gives one random clip per video; passes follow each other until n clips
    for _ in itertools.islice((item for _ in itertools.count() for item in dataset), n):
        pass


def run_ours(dataset: ClipDataset, n: int) -> None:
    for i in range(n):
        dataset[i % len(dataset)]


def run_decode_only(dataset: ClipDataset, n: int) -> None:
    """ClipDataset.__getitem__ without the transform: same windows (same draws of random), same frames."""
    for i in range(n):
        index = i % len(dataset)
        record = dataset.records[dataset.items[index][0]]
        start, end = dataset.window(index)
        indices = clip_frame_indices(start, end, exact_fps(record.fps), record.frames, dataset.spec.num_frames)
        dataset.decode(dataset.root / record.path, indices)


class EndlessShards(ShardClipDataset):
    """The shard stream, epoch after epoch, so a timed row never runs out."""

    def __iter__(self) -> Any:
        while True:
            yield from super().__iter__()


class EndlessHfStream(HfStreamClipDataset):
    """The streamed dataset, epoch after epoch."""

    def __iter__(self) -> Any:
        while True:
            yield from super().__iter__()


@contextlib.contextmanager
def hub_stream(root: Path, records: list, label2id: dict, spec: PreprocessSpec, decoder: Decoder) -> Any:
    """The prepared folder's videos as a videofolder dataset (<split>/<video>, <split>/metadata.csv) on a local
    stand-in Hub, this process talking to it, prepared with data.hf_dataset.streaming: the training stream."""
    import csv

    import datasets.config
    from huggingface_hub import constants

    theirs = {"train": "train", "val": "validation", "test": "test"}
    work = Path(tempfile.mkdtemp(prefix="hf-stream-bench-"))
    files = {}
    for split, name in theirs.items():
        rows = [r for r in records if r.split == split]
        (work / name).mkdir()
        with open(work / name / "metadata.csv", "w", newline="") as f:
            csv.writer(f).writerows([("file_name", "label"), *((Path(r.path).name, r.label) for r in rows)])
        files["bench/ucf-shape", f"{name}/metadata.csv"] = work / name / "metadata.csv"
        files.update({("bench/ucf-shape", f"{name}/{Path(r.path).name}"): root / r.path for r in rows})
    try:
        with serve_hub(files) as hub:
            os.environ.update(HF_ENDPOINT=hub.url, HF_TOKEN="hf_bench", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_OFFLINE="0")
            constants.ENDPOINT, constants.HF_HUB_OFFLINE = hub.url, False
            constants.HUGGINGFACE_CO_URL_TEMPLATE = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
            datasets.config.HF_ENDPOINT, datasets.config.HF_HUB_OFFLINE = hub.url, False
            hf = HfDatasetConfig(path="bench/ucf-shape", splits=theirs, streaming=True)
            prepared = prepare(DataConfig(source="hf_dataset", root=str(work / "prepared"), hf_dataset=hf))
            _, streamed = load_prepared(prepared)
            yield EndlessHfStream(prepared, [r for r in streamed if r.split == "train"], label2id, spec, train=True,
                                  decoder=decoder, shuffle_buffer=16, seed=0)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_shards(dataset: EndlessShards, n: int) -> None:
    for _ in itertools.islice(iter(dataset), n):
        pass


def timed(run: Callable[[int], None], n: int) -> tuple[int, float]:
    """(clips, seconds) for n clips, after 2 untimed ones that pay first-call costs (codec set-up, lazy imports)."""
    seed()
    run(2)
    seed()
    start = time.perf_counter()
    run(n)
    return n, time.perf_counter() - start


def timed_loader(dataset: torch.utils.data.Dataset, collate_fn: Callable, n: int, workers: int) -> tuple[int, float]:
    """(clips, seconds) for about n clips through a DataLoader, timed once every worker has delivered a batch.

    Waiting for one batch per worker keeps process start-up out; after the
    first batch alone, the other workers' first batches, made before the clock
    started, would be counted."""
    seed()
    iterable = isinstance(dataset, torch.utils.data.IterableDataset)  # takes no shuffle: it orders itself
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, num_workers=workers, collate_fn=collate_fn,
                                         **({} if iterable else {"shuffle": True}))
    batches = iter(loader)
    for _ in range(max(workers, 1)):
        next(batches)
    done, start = 0, time.perf_counter()
    for batch in batches:  # the guide's dataset may end first: the table shows the clips it gave
        done += len(batch["labels"])
        if done >= n:
            break
    seconds = time.perf_counter() - start
    del batches  # stops the workers
    if not done:
        raise SystemExit(f"the guide's dataset ran out during the warm-up batches: use fewer than {workers} --workers")
    return done, seconds


def machine() -> str:
    cpu = cpu_name()
    try:
        codec = version("torchcodec")
    except PackageNotFoundError:
        codec = "not installed"
    return (f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), torchvision {torchvision.__version__}, "
            f"torchcodec {codec}")


RECORDING = CACHE.parent / "recording_10min"
RECORDING_PARTS = 86  # 7 s each: 602 s


def recording_segments() -> tuple[list[VideoRecord], list[VideoRecord]]:
    """A 10-minute recording of 7 s parts, each a class's pan, as segments (start/end from the truth), and the
    same parts as files of their own (made once, cached): (segments, cut files)."""
    parts = [(sorted(MOTIONS)[k % 8], 7.0) for k in range(RECORDING_PARTS)]
    recording, truth_file = RECORDING / "recording.avi", RECORDING / "truth.txt"
    if not truth_file.is_file():
        RECORDING.mkdir(parents=True, exist_ok=True)
        truth = write_long_video(recording, parts, VIDEOS)
        for k, (label, seconds) in enumerate(parts):  # the parts as write_long_video renders them
            frames = render(VideoSpec("long", label, 1 + k % 99, 1 + k // 99), replace(VIDEOS, seconds=seconds))
            write_video(frames, RECORDING / f"part{k:03d}.avi", VIDEOS.fps, VIDEOS.bits_per_pixel)
        truth_file.write_text("\n".join(f"{s} {e} {label}" for s, e, label in truth))
    frames, fps, _ = check_video(str(recording))
    segments, cut = [], []
    for k, line in enumerate(truth_file.read_text().splitlines()):
        start, end, label = float(line.split()[0]), float(line.split()[1]), line.split()[2]
        segments.append(VideoRecord(str(recording), label, "train", "r", segment_frames(start, end, fps, frames), fps,
                                    end - start, start))
        cut.append(VideoRecord(str(RECORDING / f"part{k:03d}.avi"), label, "train", str(k),
                               *check_video(str(RECORDING / f"part{k:03d}.avi"))))
    return segments, cut


def segment_rows(spec: PreprocessSpec, decoders: list[str], clips: int) -> dict[str, tuple[int, float]]:
    """Training clips/s of segments read in place against the same parts cut into files, per decoder."""
    segments, cut = recording_segments()
    label2id = {label: i for i, label in enumerate(sorted(MOTIONS))}
    (Path(segments[0].path)).read_bytes()  # into the page cache, as the other rows' videos
    rows = {}
    for name in decoders:
        for what, records in (("cut files", cut), ("segments of a 10-min recording", segments)):
            dataset = ClipDataset(records, "", label2id, spec, train=True, decoder=DECODERS[name])
            rows[f"{what}, {name}"] = timed(lambda n, d=dataset: run_ours(d, n), clips)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=160, help="clips per timed row of our paths")
    parser.add_argument("--guide-clips", type=int, default=40,
                        help=f"clips per timed row of the guide (~10 clips/s); its DataLoader row gets at most "
                             f"{VIDEOS.train_groups * 8} minus {BATCH} per worker")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads for the rows in this process (default: torch's, one per core); 1 "
                             "when other processes load the CPU: the guide's float ops then slow several times")
    parser.add_argument("--segments", action="store_true", help="only the rows of segments of a recording "
                        "against cut files")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # the same for every row; DataLoader workers run 1 each, as torch sets
    wall = time.perf_counter()
    if args.segments:
        return print_segment_rows(args.clips)

    root = prepare(DataConfig(source="synthetic", root=str(CACHE), synthetic=VIDEOS))  # a no-op once made
    label2id, records = load_prepared(root)
    train = [r for r in records if r.split == "train"]
    for record in train:  # into the page cache, so the first row does not pay disk reads the others skip
        (root / record.path).read_bytes()
    spec = PreprocessSpec(num_frames=NUM_FRAMES, sample_rate=SAMPLE_RATE, resize_shortest_edge=CROP,
                          crop_size=(CROP, CROP), mean=MEAN, std=STD, min_scale=256 / CROP, max_scale=320 / CROP,
                          horizontal_flip=True)
    problem = torchcodec_problem()
    if problem:
        print(f"note: torchcodec rows skipped, it does not load here ({problem})")
    decoders = [name for name in DECODERS if name == "pyav" or not problem]
    default, default_decoder = choose_decoder("auto").name, choose_decoder("auto").decode
    ours = {name: ClipDataset(train, root, label2id, spec, train=True, decoder=DECODERS[name]) for name in decoders}

    print(f"machine: {machine()}")
    print(f"videos: {len(train)} train, {VIDEOS.width}x{VIDEOS.height}, {VIDEOS.fps} fps, {VIDEOS.seconds:g} s, in {root}")
    rows: dict[str, tuple[int, float]] = {"guide": timed(lambda n: run_guide(guide_dataset(root), n), args.guide_clips)}
    for name in decoders:
        rows[f"ours, {name}"] = timed(lambda n, name=name: run_ours(ours[name], n), args.clips)
        rows[f"decode only, {name}"] = timed(lambda n, name=name: run_decode_only(ours[name], n), args.clips)
    recipe = ClipDataset(train, root, label2id, replace(spec, rand_augment=(4, 7), random_erasing=0.25), train=True,
                         decoder=default_decoder)
    rows[f"ours, {default}, RandAugment + erasing"] = timed(lambda n: run_ours(recipe, n), args.clips)
    twice = ClipDataset(train, root, label2id, replace(spec, repeated_augmentation=2), train=True,
                        decoder=default_decoder)
    rows[f"ours, {default}, k = 2 clips a decode"] = timed(lambda n: run_ours(twice, n // 2), args.clips // 2 * 2)
    workers = f"DataLoader x{args.workers} workers"
    rows[f"{workers}, guide"] = timed_loader(guide_dataset(root), guide_collate, args.guide_clips, args.workers)
    # the records repeated so one epoch holds the warm-up batches and the timed clips
    repeats = math.ceil((max(args.workers, 1) * BATCH + args.clips) / len(train))
    rows[f"{workers}, ours, {default}"] = timed_loader(
        ClipDataset(train * repeats, root, label2id, spec, train=True, decoder=default_decoder),
        ModelSpec("videomae", "pixel_values", spec).collate, args.clips,
        args.workers)
    shards = CACHE.parent / "ucf_shape_shards"
    if not shards.is_dir():
        write_shards(root, shards, 16)
    _, shard_records = load_prepared(shards)
    stream = EndlessShards(shards, [r for r in shard_records if r.split == "train"], label2id, spec, train=True,
                           decoder=default_decoder, shuffle_buffer=16, seed=0)
    rows[f"shards, ours, {default}"] = timed(lambda n: run_shards(stream, n), args.clips)
    rows[f"{workers}, shards, ours, {default}"] = timed_loader(stream, ModelSpec("videomae", "pixel_values", spec).collate,
                                                               args.clips, args.workers)
    with hub_stream(root, records, label2id, spec, default_decoder) as streamed:
        rows[f"hf stream, ours, {default}"] = timed(lambda n: run_shards(streamed, n), args.clips)
        rows[f"{workers}, hf stream, ours, {default}"] = timed_loader(
            streamed, ModelSpec("videomae", "pixel_values", spec).collate, args.clips, args.workers)

    rate = {path: clips / seconds for path, (clips, seconds) in rows.items()}
    print(f"\n{'path':<52} {'clips':>6} {'seconds':>8} {'clips/s':>8}")
    for path, (clips, seconds) in rows.items():
        print(f"{path:<52} {clips:>6} {seconds:>8.2f} {rate[path]:>8.1f}")
    print()
    for name in decoders:
        ours_rate = rate[f"ours, {name}"]
        print(f"ours, {name}: {ours_rate / rate['guide']:.1f}x the guide, "
              f"{ours_rate / rate[f'decode only, {name}']:.0%} of decode only ({name})")
    print(f"{workers}: ours, {default} is {rate[f'{workers}, ours, {default}'] / rate[f'{workers}, guide']:.1f}x the guide")
    print(f"our default path ({default}) is {rate[f'ours, {default}'] / rate['guide']:.1f}x the guide's pipeline "
          f"and {rate[f'ours, {default}'] / rate[f'decode only, {default}']:.0%} of the decode-only limit")
    print(f"RandAugment + erasing: {rate[f'ours, {default}, RandAugment + erasing'] / rate[f'ours, {default}']:.0%} of "
          f"ours, {default}; repeated augmentation k = 2: {rate[f'ours, {default}, k = 2 clips a decode'] / rate[f'ours, {default}']:.2f}x "
          "its clips/s")
    print(f"shards, {default}: {rate[f'shards, ours, {default}'] / rate[f'ours, {default}']:.0%} of the folder's rate in "
          f"one process, {rate[f'{workers}, shards, ours, {default}'] / rate[f'{workers}, ours, {default}']:.0%} "
          f"through the DataLoader")
    print(f"hf stream, {default}: {rate[f'hf stream, ours, {default}'] / rate[f'ours, {default}']:.0%} of the folder's "
          f"rate in one process, {rate[f'{workers}, hf stream, ours, {default}'] / rate[f'{workers}, ours, {default}']:.0%} "
          f"through the DataLoader")
    print(f"total {time.perf_counter() - wall:.0f} s")


def print_segment_rows(clips: int) -> None:
    spec = PreprocessSpec(num_frames=NUM_FRAMES, sample_rate=SAMPLE_RATE, resize_shortest_edge=CROP,
                          crop_size=(CROP, CROP), mean=MEAN, std=STD, min_scale=256 / CROP, max_scale=320 / CROP,
                          horizontal_flip=True)
    decoders = [name for name in DECODERS if name == "pyav" or not torchcodec_problem()]
    print(f"machine: {machine()}")
    rows = segment_rows(spec, decoders, clips)
    print(f"\n{'path':<52} {'clips':>6} {'seconds':>8} {'clips/s':>8}")
    for path, (n, seconds) in rows.items():
        print(f"{path:<52} {n:>6} {seconds:>8.2f} {n / seconds:>8.1f}")
    for name in decoders:
        cut, whole = rows[f"cut files, {name}"], rows[f"segments of a 10-min recording, {name}"]
        print(f"{name}: a segment's clip costs {(whole[1] / whole[0]) / (cut[1] / cut[0]):.2f}x a cut file's")


if __name__ == "__main__":
    main()
