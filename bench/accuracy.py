"""Numbers that can rank choices: the demo-sized model fine-tuned on the harder synthetic set
(configs/hard.yaml) under named variants, several seeds each, scored on its test split.

    python bench/accuracy.py [--quick | --long-tail | --probe] [--seeds N] [--steps N] [--variants a,b,...] [--set K=V]
                             [--out FOLDER]

Each architecture's tiny model is first pretrained once on the demo set (pans filling the whole video,
900 steps) and saved without its head, as a real fine-tuning starts from a pretrained checkpoint
(checkpoints/<arch>-tiny-motion, reused after). Then for each variant and seed: fine-tune for --steps,
and score the test videos at clip level (every consecutive clip, the guide's number), from one centre
view (1x1), from 5 clips x 3 crops, softmax averaged (5x3), and through transformers' stock pipeline.
Prints a table of mean and spread (sample standard deviation over seeds) with the wall time and how
well the checkpoint knew the demo set, and writes it as JSON, Markdown and a PNG of bars with spread
bars into --out. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.data.prepare import prepare  # noqa: E402
from video_classifier.engine.training import train  # noqa: E402

CONFIG = REPO / "configs" / "hard.yaml"
PRETRAIN_CONFIG = REPO / "configs" / "demo.yaml"
PRETRAIN_STEPS = 900
ARCHITECTURES = ("timesformer", "vivit", "vjepa2", "videoprism")
# variant -> --set overrides on configs/hard.yaml: every recipe option, and every architecture as
# a tiny model of the same size, pretrained the same way
VARIANTS: dict[str, list[str]] = {
    "baseline (videomae)": [],
    "label_smoothing 0.1": ["train.label_smoothing=0.1"],
    "mixup 0.8 / cutmix 1.0": ["train.mixup_alpha=0.8", "train.cutmix_alpha=1.0"],
    "layer_decay 0.75": ["train.layer_decay=0.75"],
    "temporal jitter (max_stride auto)": ["train.max_stride=auto"],
    # VideoMAE's augmentation (augment.py): RandAugment rand-m7-n4, random erasing 0.25, 2 clips a decode
    "rand_augment m7 n4": ["train.rand_augment={}"],
    "random_erasing 0.25": ["train.random_erasing=0.25"],
    "repeated_augmentation 2": ["train.repeated_augmentation=2"],
    # what the stock pipeline sees (it spreads num_frames over the whole video): a share of the training clips so
    "whole-video clips 0.5": ["train.whole_video_clips=0.5"],
    "whole-video clips 0.25": ["train.whole_video_clips=0.25"],
    **{arch: [f"model.checkpoint=checkpoints/{arch}-tiny-motion"] for arch in ARCHITECTURES},
}
# The long tail: the harder set with 50:1 between its largest and smallest class in training (100
# videos down to 2; val and test balanced), with and without the options for imbalanced classes
LONG_TAIL = ["data.root=data/hard-longtail", "data.synthetic.train_groups=50", "data.synthetic.imbalance=50"]
VARIANTS.update({
    "long tail 50:1": LONG_TAIL,
    "long tail, class_weights balanced": LONG_TAIL + ["train.class_weights=balanced"],
    "long tail, sampler balanced": LONG_TAIL + ["train.sampler=balanced"],
})
LONG_TAIL_VARIANTS = [name for name in VARIANTS if name.startswith("long tail")]
# What trains: a probe (the pretrained backbone frozen, a linear or an attentive head on it) and LoRA
# adapters (r 16 on the attention's query and value projections, the head in full), beside full fine-tuning
VARIANTS.update({
    "probe: linear head, frozen backbone": ["train.freeze=backbone"],
    "probe: attentive head, frozen backbone": ["train.freeze=backbone", "model.head=attentive"],
    # the same probes on cached features: no augmentation, each video's 5 clips' tokens computed once
    **{f"{name}, cached features": ["train.freeze=backbone", *head, "train.cache_features=true",
                                    "train.horizontal_flip=false", "train.min_scale=1.0", "train.max_scale=1.0"]
       for name, head in (("probe: linear head", []), ("probe: attentive head", ["model.head=attentive"]))},
    "lora r 16": ["train.lora={}"],
})
PROBE_VARIANTS = ["baseline (videomae)", *[name for name in VARIANTS if name.startswith(("probe", "lora"))]]
# checkpoint folder (as configs/hard.yaml and the variants name it) -> the architecture pretrained into it
PRETRAINED = {f"checkpoints/{arch}-tiny-motion": arch for arch in ("videomae", *ARCHITECTURES)}
QUICK = ["baseline (videomae)", "label_smoothing 0.1"]
AUGMENT_VARIANTS = ["baseline (videomae)", "rand_augment m7 n4", "random_erasing 0.25", "repeated_augmentation 2"]
PIPELINE_VARIANTS = ["baseline (videomae)", "whole-video clips 0.25", "whole-video clips 0.5"]
METRICS = (("clip", "clip level"), ("1x1", "1x1"), ("5x3", "5x3"), ("pipeline", "stock pipeline"),
           ("mca", "mean class accuracy (5x3)"), ("worst", "worst-class recall (5x3)"))


def pretrained(checkpoint: Path, architecture: str, steps: int = PRETRAIN_STEPS) -> float:
    """Make `checkpoint` once, as a real fine-tuning starts from a pretrained one: the tiny model of
    `architecture` trained on the demo set (the camera pans for the whole video) for `steps` steps,
    saved without its classification head. Fine-tuning on the harder set then adds a new head.
    Returns the pretraining's demo test top-1 (5x3): how much motion the checkpoint knows."""
    from transformers import AutoModelForVideoClassification, AutoVideoProcessor

    work = checkpoint.parent / f"{checkpoint.name}.run"
    if (checkpoint / "config.json").is_file():
        return json.loads((work / "trained" / "metrics.json").read_text())["test"]["top1"]
    config = load_config(PRETRAIN_CONFIG, [
        f"model.tiny_init.architecture={architecture}", f"model.checkpoint={work / 'random'}",
        f"train.output_dir={work / 'trained'}", f"train.max_steps={steps}", "train.logging_steps=1000",
    ])
    print(f"pretraining the tiny {architecture} on {PRETRAIN_CONFIG.name} for {steps} steps -> {checkpoint}", flush=True)
    prepare(config.data)
    metrics = train(config)
    print(f"pretrained {architecture}: demo test top-1 {metrics['test']['top1']:.3f}", flush=True)
    trained = AutoModelForVideoClassification.from_pretrained(config.train.output_dir)
    trained.base_model.save_pretrained(checkpoint)
    AutoVideoProcessor.from_pretrained(config.train.output_dir).save_pretrained(checkpoint)
    return metrics["test"]["top1"]


def run_one(overrides: list[str], seed: int, steps: int, out: Path) -> dict[str, float]:
    """Train one variant with one seed; its test top-1 at clip level, 1x1, 5x3 and through the stock
    pipeline, the 5x3 mean class accuracy and worst class's recall, and the seconds taken."""
    start = time.perf_counter()
    config = load_config(CONFIG, overrides + [f"train.seed={seed}", f"train.max_steps={steps}",
                                              f"train.output_dir={out}", "train.overwrite_output_dir=true",
                                              "train.logging_steps=1000"])
    test = train(config)["test"]  # evaluates val and test (the stock pipeline on test only)
    return {"clip": test["clip_top1"], "1x1": test["centre_view_top1"], "5x3": test["top1"],
            "pipeline": test["pipeline_top1"], "mca": test["mean_class_accuracy"],
            "worst": min(c["recall"] for c in test["per_class"].values() if c["support"]),
            "seconds": time.perf_counter() - start}


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    row = {}
    for key, _ in METRICS:
        values = [r[key] for r in runs if r[key] is not None]  # None: not measurable (the stock pipeline)
        row[key] = statistics.mean(values) if values else None
        row[f"{key}_spread"] = statistics.stdev(values) if len(values) > 1 else 0.0
    row["seconds"] = statistics.mean(r["seconds"] for r in runs)
    return row


def markdown(table: dict[str, dict[str, float]], seeds: int, steps: int) -> str:
    lines = [f"| variant ({seeds} seeds, {steps} steps) | " + " | ".join(label for _, label in METRICS)
             + " | s per run | checkpoint on the demo set |", "|---" * (len(METRICS) + 3) + "|"]
    for name, row in table.items():
        cells = [f"{row[k]:.3f} ± {row[f'{k}_spread']:.3f}" if row[k] is not None else "n/a" for k, _ in METRICS]
        known = "n/a" if row.get("pretrained") is None else f"{row['pretrained']:.3f}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['seconds']:.0f} | {known} |")
    return "\n".join(lines)


def plot(table: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(table)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(names)), 4))
    width = 0.8 / len(METRICS)
    for i, (key, label) in enumerate(METRICS):
        ax.bar(x + (i - (len(METRICS) - 1) / 2) * width, [table[n][key] or 0 for n in names], width, label=label,
               yerr=[table[n][f"{key}_spread"] for n in names], capsize=3)
    ax.axhline(1 / 8, color="grey", linestyle=":", label="chance (8 classes)")
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel("test top-1 / recall")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def variant_runs(overrides: list[str], name: str, seeds: int, steps: int, out: Path, row: str) -> list[dict]:
    """A variant's runs, one per seed, each printed as it ends."""
    runs = []
    for seed in range(seeds):
        folder = out / "runs" / f"{re.sub(r'[^a-z0-9]+', '-', row.lower()).strip('-')}-{seed}"
        runs.append(run_one(overrides + VARIANTS[name], seed, steps, folder))
        print(f"{row}, seed {seed}: " + ", ".join(f"{label} {runs[-1][k]}" if runs[-1][k] is None else
                                                  f"{label} {runs[-1][k]:.3f}" for k, label in METRICS)
              + f" ({runs[-1]['seconds']:.0f} s)", flush=True)
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{', '.join(QUICK)}; 2 seeds")
    parser.add_argument("--seeds", type=int, help="seeds per variant (default 3; --quick 2)")
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps per run (default 300)")
    parser.add_argument("--variants", help=f"comma-separated, from: {', '.join(VARIANTS)}")
    parser.add_argument("--long-tail", action="store_true", help=f"the variants {', '.join(LONG_TAIL_VARIANTS)}")
    parser.add_argument("--probe", action="store_true", help=f"the variants {', '.join(PROBE_VARIANTS)}")
    parser.add_argument("--augment", action="store_true", help=f"the variants {', '.join(AUGMENT_VARIANTS)}")
    parser.add_argument("--pipeline", action="store_true", help=f"the variants {', '.join(PIPELINE_VARIANTS)}")
    parser.add_argument("--equal-time", action="store_true",
                        help="then each variant again with its steps scaled to the first variant's mean wall time")
    parser.add_argument("--out", default=str(REPO / "runs" / "bench-accuracy"), help="folder for runs and tables")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override configs/hard.yaml for every variant (a changed data.synthetic needs its own "
                             "data.root)")
    args = parser.parse_args(argv)
    names = (args.variants.split(",") if args.variants else LONG_TAIL_VARIANTS if args.long_tail
             else PROBE_VARIANTS if args.probe else AUGMENT_VARIANTS if args.augment
             else PIPELINE_VARIANTS if args.pipeline else QUICK if args.quick
             else list(VARIANTS))
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}: choose from {', '.join(VARIANTS)}")
    seeds = args.seeds or (2 if args.quick else 3)
    steps = args.steps
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = {c.data.root: c.data for c in (load_config(CONFIG, args.overrides + VARIANTS[n]) for n in names)}
    for settings in data.values():  # each data set once; a prepared folder is reused
        prepare(settings)
    pretraining = {}  # variant -> its checkpoint's demo test top-1; the checkpoints are made once and reused
    for name in names:
        checkpoint = load_config(CONFIG, args.overrides + VARIANTS[name]).model.checkpoint
        if checkpoint in PRETRAINED:
            pretraining[name] = pretrained(Path(checkpoint), PRETRAINED[checkpoint])
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
          f"{len(names)} variants x {seeds} seeds x {steps} steps on {CONFIG.name} {' '.join(args.overrides)}")
    table: dict[str, dict[str, float]] = {}
    plan = [(name, name, steps) for name in names]
    while plan:
        row, name, row_steps = plan.pop(0)
        table[row] = {**summarise(variant_runs(args.overrides, name, seeds, row_steps, out, row)),
                      "pretrained": pretraining.get(name)}
        (out / "accuracy.json").write_text(json.dumps({"seeds": seeds, "steps": steps, "table": table}, indent=2))
        if args.equal_time and row == names[-1]:  # every variant again, at the first one's wall time
            budget = table[names[0]]["seconds"]
            plan = [(f"{n} (equal time: {round(steps * budget / table[n]['seconds'])} steps)", n,
                     round(steps * budget / table[n]["seconds"])) for n in names[1:]]
    text = markdown(table, seeds, steps)
    print("\n" + text)
    (out / "accuracy.md").write_text(text + "\n")
    plot(table, out / "accuracy.png")
    print(f"\ntables and plot in {out}")


if __name__ == "__main__":
    main()
