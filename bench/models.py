"""The five architectures at their real checkpoints' shapes: parameters, and the memory and time of one
training step per clip with each memory option, measured in one run on this machine (random weights;
nothing is downloaded).

    python bench/models.py [--only videomae,vjepa2] [--options none,checkpointing,frozen,lora] [--batch 1]
                           [--device cpu|cuda] [--precision fp32|bf16]

Options, as train.py sets them up: none (full fine-tuning), checkpointing (train.gradient_checkpointing),
frozen (train.freeze: backbone: only the head trains, the backbone in eval mode), lora (train.lora with
its defaults: r 16 on the attention's query and value projections, the head in full).

Each model runs in its own process, at batch B and 2B, so that its peak memory is its own: memory per
clip is (peak at 2B - peak at B) / B, the activations one more clip in a batch costs; the rest of the
peak (weights, gradients, AdamW's state) is the fixed cost. Peak memory is the process's peak resident
memory on the CPU (fp32) and torch.cuda.max_memory_allocated on a GPU. Prints a table, and the largest batch each option fits in 24 GB and 80 GB computed from those two
numbers (fixed + batch x per clip <= the memory); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import cpu_name  # noqa: E402  (bench/machine.py)

OPTIONS = ("none", "checkpointing", "frozen", "lora")

# architecture -> (checkpoint whose shape this is, transformers config class, fields of that checkpoint)
SHAPES = {
    "videomae": ("MCG-NJU/videomae-base", "VideoMAEConfig", {}),
    "timesformer": ("facebook/timesformer-base-finetuned-k400", "TimesformerConfig", {}),
    "vivit": ("google/vivit-b-16x2-kinetics400", "VivitConfig", {}),
    "vjepa2": ("facebook/vjepa2-vitl-fpc16-256-ssv2", "VJEPA2Config", {"frames_per_clip": 16}),
    "videoprism": ("google/videoprism-base-f16r288", "VideoPrismVisionConfig", {}),
}


def prepare(model, option: str):
    """The model as train.py trains it with `option`, and the parameters its optimizer takes."""
    from video_classifier.core.config import LoraOptions
    from video_classifier.model.model_spec import backbone
    from video_classifier.model.trainable import add_lora, freeze_backbone

    model.train()
    if option == "checkpointing":
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    elif option == "frozen":
        freeze_backbone(model)
        backbone(model).eval()
    elif option == "lora":
        model = add_lora(model, LoraOptions())
    return model, [p for p in model.parameters() if p.requires_grad]


def measure(architecture: str, batch: int, device: str, precision: str, option: str = "none") -> dict:
    """One architecture, in this process: build, then time one training step after one warm-up."""
    import torch
    import transformers

    _, config_class, fields = SHAPES[architecture]
    config = getattr(transformers, config_class)(num_labels=101, **fields)
    model, trainable = prepare(transformers.AutoModelForVideoClassification.from_config(config).to(device), option)
    frames = getattr(config, "num_frames", None) or config.frames_per_clip
    size = getattr(config, "image_size", None) or config.crop_size
    clips = torch.randn(batch, frames, 3, size, size, device=device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32

    def step() -> None:
        with torch.autocast(device_type=device, dtype=dtype, enabled=precision == "bf16"):
            loss = model(**{model.main_input_name: clips}, labels=labels).loss
        loss.backward()  # the frozen backbone kept no activations for it
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up: gradients and the optimizer's state exist from here on
    start = time.perf_counter()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "architecture": architecture,
        "option": option,
        "trainable_m": sum(p.numel() for p in trainable) / 1e6,
        "checkpoint": SHAPES[architecture][0],
        "frames": frames,
        "size": size,
        "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "peak_bytes": peak,
        "seconds_per_clip": seconds / batch,
    }


def machine() -> str:
    import os

    return f"{os.cpu_count()} cores, {cpu_name()}"


def largest_batch(row: dict, gigabytes: float) -> str:
    """The largest batch with fixed + batch x per clip within `gigabytes` (from the measured numbers)."""
    per_clip, room = max(row["memory_gb_per_clip"], 1e-3), gigabytes - row["fixed_gb"]
    return str(int(room // per_clip)) if room >= per_clip else "0"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated architectures (default: all five)")
    parser.add_argument("--options", default=",".join(OPTIONS), help=f"comma-separated, of {', '.join(OPTIONS)}")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one architecture, print JSON
    parser.add_argument("--option", default="none", help=argparse.SUPPRESS)  # internal, with --one
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.batch, args.device, args.precision, args.option)))
        return
    names = args.only.split(",") if args.only else list(SHAPES)
    options = args.options.split(",")
    for chosen, allowed, what in ((names, SHAPES, "architecture"), (options, OPTIONS, "option")):
        unknown = sorted(set(chosen) - set(allowed))
        if unknown:
            parser.error(f"unknown {what} {unknown[0]}: choose from {', '.join(allowed)}")
    print(f"machine: {machine()}; {args.device}, {args.precision}, batch {args.batch}, random weights")
    rows = []
    for name in names:
        for option in options:
            runs = []
            for batch in (args.batch, 2 * args.batch):
                command = [sys.executable, __file__, "--one", name, "--option", option, "--batch", str(batch),
                           "--device", args.device, "--precision", args.precision]
                result = subprocess.run(command, capture_output=True, text=True)
                if result.returncode != 0:
                    print(f"{name} ({option}): failed at batch {batch}: "
                          f"{(result.stderr.strip().splitlines() or ['?'])[-1]}")
                    break
                runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
            if len(runs) == 2:
                per_clip = (runs[1]["peak_bytes"] - runs[0]["peak_bytes"]) / args.batch
                rows.append({**runs[1], "memory_gb_per_clip": per_clip / 1e9,
                             "fixed_gb": (runs[0]["peak_bytes"] - per_clip * args.batch) / 1e9})
                print(f"  measured {name} ({option})", file=sys.stderr, flush=True)
    print("\n| architecture | shape of | frames | input | option | trains | memory per clip | fixed memory "
          "| clips/s | largest batch in 24 GB | in 80 GB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['architecture']} | `{r['checkpoint']}` | {r['frames']} | {r['size']} px | {r['option']} | "
              f"{r['trainable_m']:.2f} of {r['parameters_m']:.0f} M | {r['memory_gb_per_clip']:.2f} GB | "
              f"{r['fixed_gb']:.1f} GB | {1 / r['seconds_per_clip']:.3f} | {largest_batch(r, 24)} | "
              f"{largest_batch(r, 80)} |")
    print("\nlargest batch: computed from the two measured columns (fixed + batch x per clip), not run")


if __name__ == "__main__":
    main()
