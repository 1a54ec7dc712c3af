"""Training throughput end to end: the model alone, our data path and the guide's, in one run.

    .venv/bin/python bench/train.py                  # the demo's model on this machine's CPU, 2 workers
    .venv/bin/python bench/train.py --model videomae-base --device cuda --workers 16 --precision bf16 --compile

Every row trains the same model (random weights) with the same batch size, AdamW and precision, one
optimizer step per batch, on the same generated videos (bench/data.py's: 320x240, 25 fps, 7 s, UCF101's
shape):
  model alone   batches already on the device: the rate the data paths can at best reach
  ours          ClipDataset (the sampled frames decoded, scaled and cropped as uint8) in DataLoader
                workers, uint8 batches to the device, normalised there (ModelSpec.pixels)
  guide         pytorchvideo's Ucf101 with the guide's float transforms (bench/data.py's guide_dataset)
                in DataLoader workers, float32 batches to the device
The model-alone rows compare eager and sdpa attention (and torch.compile with --compile); the data
paths run on the fastest of them. "device busy" is the share of the timed wall time not spent
waiting for the next batch (each step is synchronised, so waiting is all that is left). Every data
row first runs enough steps to drain the batches its workers made before the clock started.
A benchmark, not a test: it prints numbers and checks none.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # as `python train.py` run from the root has it

import torch  # noqa: E402
import transformers  # noqa: E402

from bench.data import CACHE, VIDEOS, guide_collate, guide_dataset, machine  # noqa: E402
from video_classifier.core.config import DataConfig, TrainConfig, load_config  # noqa: E402
from video_classifier.data.datasets import ClipDataset  # noqa: E402
from video_classifier.data.decoding import choose_decoder  # noqa: E402
from video_classifier.data.manifest import load_prepared  # noqa: E402
from video_classifier.data.prepare import prepare  # noqa: E402
from video_classifier.model.model_spec import ModelSpec, describe, tiny_model  # noqa: E402

Batch = tuple[torch.Tensor, torch.Tensor]  # (model input or clips, labels)


def build(name: str, labels: int, attention: str) -> tuple[Any, Any, int, TrainConfig]:
    """(model with a classification head, processor, frame stride, augmentation) of `name`."""
    if name == "videomae-base":  # VideoMAE-B at 16 x 224 px, the guide's stride and scale range
        config = transformers.VideoMAEConfig(use_mean_pooling=True)
        processor = transformers.VideoMAEVideoProcessor(size={"shortest_edge": 224},
                                                        crop_size={"height": 224, "width": 224})
        stride, train = 4, TrainConfig(min_scale=256 / 224, max_scale=320 / 224, horizontal_flip=True)
    else:  # the demo's model (configs/demo.yaml), as `make demo` trains it
        demo = load_config(ROOT / "configs" / "demo.yaml")
        backbone, processor = tiny_model(demo.model.tiny_init, seed=0)
        config, stride, train = backbone.config, demo.data.sample_rate, demo.train
    config.num_labels = labels
    torch.manual_seed(0)
    model = transformers.AutoModelForVideoClassification.from_config(config, attn_implementation=attention)
    return model, processor, stride, train


class Forever(torch.utils.data.IterableDataset):
    """The guide's iterable dataset, pass after pass (one pass is one clip per video)."""

    def __init__(self, dataset: torch.utils.data.IterableDataset):
        self.dataset = dataset

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            yield from self.dataset


def trainer_step(model: Any, spec: ModelSpec, device: str, precision: str) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """One optimizer step on (model input, labels) already on the device, synchronised."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.05)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16")

    def step(pixels: torch.Tensor, labels: torch.Tensor) -> None:
        with autocast:
            logits = ModelSpec.class_scores(model(**spec.inputs(pixels)).logits)
        torch.nn.functional.cross_entropy(logits.float(), labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def timed(batches: Iterator[Batch], to_device: Callable[[Batch], Batch], step: Callable, warmup: int,
          steps: int, batch_size: int) -> dict[str, float]:
    """Train `warmup` untimed steps, then `steps` timed ones; clips/s and the share of time not waiting."""
    for _ in range(warmup):
        step(*to_device(next(batches)))
    waiting, start = 0.0, time.perf_counter()
    for _ in range(steps):
        asked = time.perf_counter()
        batch = next(batches)
        waiting += time.perf_counter() - asked
        step(*to_device(batch))
    seconds = time.perf_counter() - start
    return {"clips": steps * batch_size, "seconds": seconds, "rate": steps * batch_size / seconds,
            "busy": 1 - waiting / seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo", choices=["demo", "videomae-base"],
                        help="demo: configs/demo.yaml's model; videomae-base: VideoMAE-B's shape (random weights)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes per data path")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--batch", type=int, default=None, help="clips per step (default: 8 for demo, 16 otherwise)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per row (default: 60 on the CPU, 100 on a GPU)")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile row (compiling takes minutes)")
    args = parser.parse_args(argv)
    batch_size = args.batch or (8 if args.model == "demo" else 16)
    steps = args.steps or (60 if args.device == "cpu" else 100)
    device = torch.device(args.device)
    wall = time.perf_counter()

    root = prepare(DataConfig(source="synthetic", root=str(CACHE), synthetic=VIDEOS))  # a no-op once made
    label2id, records = load_prepared(root)
    train = [r for r in records if r.split == "train"]
    print(f"machine: {machine()}")
    if device.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(device)}")
    print(f"model: {args.model}, batch {batch_size}, {args.precision}, AdamW; {args.workers} workers per data path; "
          f"{len(train)} videos {VIDEOS.width}x{VIDEOS.height}, {VIDEOS.fps} fps, {VIDEOS.seconds:g} s")

    # (a) the model alone, per attention implementation (and compiled)
    variants: dict[str, tuple[Any, ModelSpec]] = {}
    for attention in ("eager", "sdpa"):
        model, processor, stride, augment = build(args.model, len(label2id), attention)
        variants[attention] = (model.to(device).train(), describe(model, processor, stride, augment))
    if args.compile:
        model, spec = variants["sdpa"]
        variants["sdpa, compiled"] = (torch.compile(model), spec)
    rows: dict[str, dict[str, float]] = {}
    spec = variants["sdpa"][1]
    p = spec.preprocess
    clips = torch.randint(0, 256, (batch_size, p.num_frames, 3, *p.crop_size), dtype=torch.uint8)
    labels = torch.randint(0, len(label2id), (batch_size,))
    on_device = (spec.pixels(clips.to(device)), labels.to(device))
    for name, (model, spec) in variants.items():
        started = time.perf_counter()
        step = trainer_step(model, spec, device.type, args.precision)
        step(*on_device)  # first step: compiles, allocates the optimizer's state
        first = time.perf_counter() - started
        rows[f"model alone, {name}"] = timed(itertools.repeat(on_device), lambda b: b, step, 2, steps, batch_size)
        if "compiled" in name:
            print(f"note: {name}'s first step took {first:.0f} s (compiling)")
    best = max(variants, key=lambda name: rows[f"model alone, {name}"]["rate"])
    model, spec = variants[best]
    step = trainer_step(model, spec, device.type, args.precision)
    pin = device.type == "cuda"
    warmup = 2 * max(args.workers, 1) + 2  # the batches made before the clock started, and two more

    # (b) ours: uint8 clips, normalised on the device
    repeats = math.ceil((warmup + steps + 1) * batch_size / len(train))
    ours = torch.utils.data.DataLoader(
        ClipDataset(train * repeats, root, label2id, spec.preprocess, train=True, decoder=choose_decoder("auto").decode),
        batch_size=batch_size, shuffle=True, num_workers=args.workers, collate_fn=spec.collate, pin_memory=pin,
        drop_last=True)

    def ours_to_device(batch: dict[str, torch.Tensor]) -> Batch:
        return (spec.pixels(batch[spec.input_key].to(device, non_blocking=True)),
                batch["labels"].to(device, non_blocking=True))

    rows[f"ours, {best}"] = timed(iter(ours), ours_to_device, step, warmup, steps, batch_size)

    # (c) the guide: float32 clips normalised by the workers
    guide = torch.utils.data.DataLoader(Forever(guide_dataset(root, spec.preprocess)), batch_size=batch_size,
                                        num_workers=args.workers, collate_fn=guide_collate, pin_memory=pin)

    def guide_to_device(batch: dict[str, torch.Tensor]) -> Batch:
        return (batch["pixel_values"].to(device, non_blocking=True), batch["labels"].to(device, non_blocking=True))

    rows[f"guide, {best}"] = timed(iter(guide), guide_to_device, step, warmup, steps, batch_size)

    alone = rows[f"model alone, {best}"]["rate"]
    clip_bytes = p.num_frames * 3 * p.crop_size[0] * p.crop_size[1]
    to_device = {f"ours, {best}": clip_bytes, f"guide, {best}": 4 * clip_bytes}
    print(f"\n| path | clips | seconds | clips/s | of model alone ({best}) | device busy | bytes per clip to the device |")
    print("|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        sent = f"{to_device[name] / 2**20:.2f} MiB" if name in to_device else "-"
        print(f"| {name} | {row['clips']:.0f} | {row['seconds']:.1f} | {row['rate']:.4g} | "
              f"{row['rate'] / alone:.0%} | {row['busy']:.0%} | {sent} |")
    ours_rate, guide_rate = rows[f"ours, {best}"]["rate"], rows[f"guide, {best}"]["rate"]
    print(f"\nours end to end: {ours_rate:.4g} clips/s = {ours_rate / guide_rate:.1f}x the guide's {guide_rate:.4g}; "
          f"(b)/(a) = {ours_rate / alone:.0%}, (c)/(a) = {guide_rate / alone:.0%} of the model alone ({alone:.4g})")
    print(f"total {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
