"""What torch threads beyond the usable cores cost: the model step of one clip at VideoMAE-B's shape (16 x 224 px,
random weights) with torch's threads at the cores this process may use (core/cpus.py: what infer.py, eval.py and
the page set), and at 2x, 4x and 8x that, as torch starts under a CPU quota on a larger host.

    python bench/threads.py [--repeats 3] [--model videomae-base|demo]

Each row: the median of --repeats forward passes after one warm-up, in the same run. Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from machine import cpu_name  # noqa: E402
from transformers import VideoMAEConfig, VideoMAEForVideoClassification  # noqa: E402

from video_classifier.core.cpus import usable_cores  # noqa: E402


@torch.inference_mode()
def seconds_per_clip(model: torch.nn.Module, clip: torch.Tensor, threads: int, repeats: int) -> float:
    torch.set_num_threads(threads)
    model(pixel_values=clip)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        model(pixel_values=clip)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", choices=("videomae-base", "demo"), default="videomae-base")
    args = parser.parse_args(argv)
    config = VideoMAEConfig(num_labels=8) if args.model == "videomae-base" else VideoMAEConfig(
        num_labels=8, image_size=64, patch_size=16, num_frames=8, hidden_size=96, num_hidden_layers=3,
        num_attention_heads=4, intermediate_size=384)
    model = VideoMAEForVideoClassification(config).eval()
    clip = torch.randn(1, config.num_frames, 3, config.image_size, config.image_size)
    cores = usable_cores()
    rows = [(cores * k, seconds_per_clip(model, clip, cores * k, args.repeats)) for k in (1, 2, 4, 8)]
    print(f"\n{args.model} shape, one clip; {cpu_name()}, {cores} usable cores; median of {args.repeats}\n")
    print("| torch threads | ms per clip | vs threads = usable cores |")
    print("|---|---|---|")
    for threads, seconds in rows:
        print(f"| {threads}{' (what core/cpus.py sets)' if threads == cores else ''} | {seconds * 1000:.0f} | "
              f"{rows[0][1] / seconds:.2f}x |")


if __name__ == "__main__":
    main()
