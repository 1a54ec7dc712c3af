"""The timeline against annotations, calibration and "none of these", several seeds each.

    python bench/untrimmed.py [--seeds 3] [--parts timeline,open-set,calibration] [--out runs/bench-untrimmed]

- timeline: the untrimmed demo (configs/untrimmed.yaml: synthetic recordings, prepare_data.py
  --make-recordings) trained per seed with its background class and without one; each model's timeline at
  its defaults over the test recordings (eval.py --timeline's numbers: frame accuracy, F1@k, edit, mAP,
  false alarms per hour of background, annotated actions found), the model without background also with
  infer.unknown: auto in place of the background class; beside them each run's segment top-1 at 5x3 and 1x1.
- open-set: the hard set (configs/hard.yaml) with 2 of its 8 classes held out of training and val (seed k
  holds out the (2k)th and (2k+1)th class, in order), their test videos the unknown ones: AUROC of telling
  the 6 known classes' test videos from them, and the share of unknown videos rejected where 95% of the
  known test videos are accepted, by the calibrated maximum softmax probability and by the energy score
  (engine/open_set.py); and what infer.unknown: auto's threshold (chosen on val) does on test.
- calibration: the hard set with all 8 classes: ECE (15 bins) of every test view (5 clips x 3 crops of 64
  videos: 960 scores) and of the videos' averaged scores, before and after the temperature fitted on val.

Prints Markdown tables (mean ± sample standard deviation over seeds) and writes them with the per-seed
numbers as JSON into --out. Asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from accuracy import PRETRAINED, pretrained  # noqa: E402  (bench/accuracy.py: the hard set's checkpoint)
from machine import cpu_name  # noqa: E402

from video_classifier.core.config import Config, load_config  # noqa: E402
from video_classifier.data.datasets import ViewDataset  # noqa: E402
from video_classifier.data.decoding import choose_decoder  # noqa: E402
from video_classifier.data.manifest import load_prepared  # noqa: E402
from video_classifier.data.prepare import prepare  # noqa: E402
from video_classifier.data.recordings import write_recordings  # noqa: E402
from video_classifier.engine.open_set import auroc, energy, max_probability, rejected_at  # noqa: E402
from video_classifier.engine.scoring import video_scores  # noqa: E402
from video_classifier.engine.training import train  # noqa: E402
from video_classifier.serve.inference import load_model  # noqa: E402
from video_classifier.serve.timeline_eval import evaluate_timelines  # noqa: E402

UNTRIMMED = REPO / "configs" / "untrimmed.yaml"
HARD = REPO / "configs" / "hard.yaml"
PARTS = ("timeline", "open-set", "calibration")
TIMELINE_KEYS = ("frame_accuracy", "f1@0.10", "f1@0.25", "f1@0.50", "edit", "map@0.3", "map@0.5", "map@0.7",
                 "false_alarms_per_hour")
COMMON = ["train.overwrite_output_dir=true", "train.logging_steps=1000"]


def trained(config_path: Path, overrides: list[str]) -> tuple[Config, dict]:
    """Train (or reuse a finished run in the same folder: train.py's own rule) and return its config and metrics."""
    config = load_config(config_path, overrides)
    prepare(config.data)
    return config, train(config)


def timeline_rows(seed: int, out: Path) -> dict[str, dict]:
    """One seed of the timeline part: {row name: metrics}."""
    recordings = REPO / "data" / "untrimmed-recordings"
    if not (recordings / "annotations.csv").is_file():
        write_recordings(recordings, load_config(UNTRIMMED).data.synthetic)
    rows = {}
    variants = {"background class": [],
                "no background class": ["data.background=null", "data.root=data/untrimmed-nobg"]}
    for name, overrides in variants.items():
        folder = out / f"{name.replace(' ', '-')}-{seed}"
        config, metrics = trained(UNTRIMMED, overrides + COMMON + [f"train.seed={seed}", f"train.output_dir={folder}"])
        test = [r for r in load_prepared(config.data.root)[1] if r.split == "test"]
        for unknown in (("off", "auto") if config.data.background is None else ("off",)):
            config.infer.unknown = unknown
            model, spec = load_model(config.train.output_dir, config, "torch")
            found = evaluate_timelines(model, spec, config, test, choose_decoder(config.data.decoder),
                                       folder / f"timeline-unknown-{unknown}", "test")
            row = name + (", infer.unknown auto" if unknown == "auto" else "")
            rows[row] = {**{k: found[k] for k in TIMELINE_KEYS}, "found": found["actions_found"] / found["actions"],
                         "5x3": metrics["test"]["top1"], "1x1": metrics["test"]["centre_view_top1"]}
    return rows


def held_out_listing(seed: int, out: Path) -> tuple[Path, list[str]]:
    """A list (path, label, split) of the hard set's videos without 2 of its classes (seed k: the (2k)th and
    (2k+1)th, wrapping), for the folder source; and the held-out classes."""
    config = load_config(HARD)
    prepare(config.data)
    label2id, records = load_prepared(config.data.root)
    classes = sorted(label2id)
    held = [classes[(2 * seed) % len(classes)], classes[(2 * seed + 1) % len(classes)]]
    listing = out / f"hard-without-{'-'.join(held)}.csv"
    listing.parent.mkdir(parents=True, exist_ok=True)
    with open(listing, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        for r in records:
            if r.label not in held:
                writer.writerow([str((Path(config.data.root) / r.path).resolve()), r.label, r.split])
    return listing, held


def view_logits(model, spec, config: Config, records) -> torch.Tensor:
    """(videos, views, classes) logits of config.eval's views of `records` (paths under config.data.root)."""
    views = ViewDataset(records, config.data.root, {}, spec.preprocess, config.eval.num_clips, config.eval.num_crops,
                        choose_decoder(config.data.decoder).decode)
    return video_scores(model, spec, views, config.eval.batch_size, config.data.workers(), per_view=True, logits=True)


def ensure_checkpoint() -> None:
    """The hard set's pretrained checkpoint (bench/accuracy.py makes it once)."""
    checkpoint = load_config(HARD).model.checkpoint
    pretrained(REPO / checkpoint, PRETRAINED[checkpoint])


def open_set_row(seed: int, out: Path) -> dict:
    """One seed of the open-set part."""
    ensure_checkpoint()
    listing, held = held_out_listing(seed, out)
    hard = load_config(HARD)
    config, _ = trained(HARD, COMMON + [
        "data.source=folder", f"data.videos={listing}", f"data.root={out / f'data-open-{seed}'}", 'data.group_pattern=""',
        f"train.seed={seed}", "train.max_steps=300", f"train.output_dir={out / f'open-set-{seed}'}",
        "infer.unknown=auto"])
    model, spec = load_model(config.train.output_dir, config, "torch")
    test = [r for r in load_prepared(hard.data.root)[1] if r.split == "test"]
    known = [r for r in test if r.label not in held]
    unknown = [r for r in test if r.label in held]
    logits = {"known": view_logits(model, spec, hard, known), "unknown": view_logits(model, spec, hard, unknown)}
    scores = {"max probability": {k: max_probability(spec.task.scores(v).mean(1)) for k, v in logits.items()},
              "energy": {k: energy(v) for k, v in logits.items()}}
    row = {"held_out": held}
    for name, s in scores.items():
        row[f"{name} auroc"] = auroc(s["known"], s["unknown"])
        row[f"{name} rejected@95"] = rejected_at(s["known"], s["unknown"], 0.95)
    threshold = spec.unknown
    mp = scores["max probability"]
    row["auto threshold"] = threshold
    row["auto known accepted"] = float((mp["known"] >= threshold).double().mean())
    row["auto unknown rejected"] = float((mp["unknown"] < threshold).double().mean())
    return row


def calibration_row(seed: int, out: Path) -> dict:
    """One seed of the calibration part."""
    ensure_checkpoint()
    _, metrics = trained(HARD, COMMON + [f"train.seed={seed}", f"train.output_dir={out / f'calibration-{seed}'}"])
    test = metrics["test"]
    return {k: test[k] for k in ("temperature", "ece_before", "ece_after", "video_ece_before", "video_ece_after",
                                 "top1")}


def spread(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def table(header: list[str], rows: dict[str, list[dict]], keys: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, runs in rows.items():
        lines.append(f"| {name} | " + " | ".join(spread([r[k] for r in runs]) for k in keys) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from: {', '.join(PARTS)}")
    parser.add_argument("--out", default=str(REPO / "runs" / "bench-untrimmed"))
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",")]
    if set(parts) - set(PARTS):
        parser.error(f"--parts: choose from {', '.join(PARTS)}")
    out, began = Path(args.out), time.perf_counter()
    found: dict[str, dict] = {}
    if "timeline" in parts:
        runs: dict[str, list[dict]] = {}
        for seed in range(args.seeds):
            for name, row in timeline_rows(seed, out / "runs").items():
                runs.setdefault(name, []).append(row)
        found["timeline"] = runs
    if "open-set" in parts:
        found["open-set"] = {"held-out classes": [open_set_row(seed, out / "runs") for seed in range(args.seeds)]}
    if "calibration" in parts:
        found["calibration"] = {"hard set, 8 classes": [calibration_row(seed, out / "runs")
                                                        for seed in range(args.seeds)]}
    report(found, args.seeds, time.perf_counter() - began, out)


def report(found: dict[str, dict], seeds: int, seconds: float, out: Path) -> None:
    text = [f"{seeds} seeds, {seconds / 60:.0f} min on {cpu_name()}, {torch.get_num_threads()} threads"]
    if "timeline" in found:
        text += ["", "Untrimmed demo, test recordings, the timeline at its defaults:", "",
                 table(["run", "frame acc", "F1@0.10", "F1@0.25", "F1@0.50", "edit", "mAP@0.3", "mAP@0.5", "mAP@0.7",
                        "false alarms / h", "actions found", "segments top-1 5x3", "1x1"], found["timeline"],
                       [*TIMELINE_KEYS, "found", "5x3", "1x1"])]
    if "open-set" in found:
        text += ["", "Hard set, 2 of 8 classes held out of training (their 16 test videos unknown, 48 known):", "",
                 table(["scores", "AUROC (max prob)", "rejected @95% (max prob)", "AUROC (energy)",
                        "rejected @95% (energy)", "auto threshold", "auto: known accepted", "auto: unknown rejected"],
                       found["open-set"], ["max probability auroc", "max probability rejected@95", "energy auroc",
                                           "energy rejected@95", "auto threshold", "auto known accepted",
                                           "auto unknown rejected"])]
    if "calibration" in found:
        text += ["", "Hard set, test: ECE (15 bins) before -> after the temperature fitted on val:", "",
                 table(["model", "temperature", "views before", "views after", "videos before", "videos after",
                        "top-1 5x3"], found["calibration"],
                       ["temperature", "ece_before", "ece_after", "video_ece_before", "video_ece_after", "top1"])]
    print("\n".join(text))
    out.mkdir(parents=True, exist_ok=True)
    (out / "untrimmed.md").write_text("\n".join(text) + "\n")
    (out / "untrimmed.json").write_text(json.dumps(found, indent=2) + "\n")
    print(f"\ntables in {out / 'untrimmed.md'}, per-seed numbers in {out / 'untrimmed.json'}")


if __name__ == "__main__":
    main()
