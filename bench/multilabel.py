"""The multi-label demo's claim: its labels (a pan, and a square's own motion, drawn independently) are
learnt from motion, and one frame tells them no better than chance.

    python bench/multilabel.py [--seeds 2] [--steps 1500] [--skip-demo] [--rules-only]

1. The demo itself: prepare_data.py and train.py on configs/multilabel.yaml (through the product, as
   `make demo` runs the single-label one), and its test mAP at 5x3, 1x1, clip level and through the
   stock pipeline.
2. The control, per seed: the same tiny VideoMAE trained by hand on clips of that prepared set (the
   product's ClipDataset and MultiLabel loss), once on the real clips and once on clips whose frames
   are all the first (appearance kept, motion removed); each scored on every test video's centre clip.
   Chance: the mAP of random scores on the same test labels (mean over 200 draws, and its 99.9th
   percentile). Asserts nothing.
3. Threshold rules, from the demo run's saved per-video scores (scores_val.json; scores_test.json with
   the folded thresholds taken back out): each rule chooses on val and is scored on test by exact match
   and micro F1: 0.5 for every class; per-class best F1 on val (what train.py folds); the same with a
   floor of 0.5; one threshold shared by all classes, the one of best exact match on val.
   `--rules-only` prints the demo's numbers and this table alone, from a finished run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.core.task import MultiLabel, split_labels  # noqa: E402
from video_classifier.data.datasets import ClipDataset, ViewDataset  # noqa: E402
from video_classifier.data.decoding import choose_decoder  # noqa: E402
from video_classifier.data.manifest import load_prepared  # noqa: E402
from video_classifier.data.prepare import prepare  # noqa: E402
from video_classifier.data.preprocessing import Normalize, PreprocessSpec  # noqa: E402
from video_classifier.engine.training import train  # noqa: E402

CONFIG = REPO / "configs" / "multilabel.yaml"
SPEC = PreprocessSpec(num_frames=8, sample_rate=2, resize_shortest_edge=64, crop_size=(64, 64),
                      mean=(0.5,) * 3, std=(0.5,) * 3, min_scale=1.0, max_scale=1.25)
TASK = MultiLabel()


def clips(root: Path, per_video: int = 4) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(x, y) of `per_video` random clips per training video and of each test video's centre clip."""
    label2id, records = load_prepared(root)
    decode = choose_decoder("auto").decode
    random.seed(0)
    torch.manual_seed(0)
    train_set = ClipDataset([r for r in records if r.split == "train"], root, label2id, SPEC, train=True,
                            decoder=decode, task=TASK)
    items = [train_set[i] for _ in range(per_video) for i in range(len(train_set))]
    test_set = ViewDataset([r for r in records if r.split == "test"], root, label2id, SPEC, 1, 1, decode, task=TASK)
    tests = [test_set[i] for i in range(len(test_set))]
    normalize = Normalize(SPEC)
    return ((normalize(torch.stack([i["video"] for i in items])), torch.stack([i["label"] for i in items])),
            (normalize(torch.cat([i["views"] for i in tests])), torch.stack([i["label"] for i in tests])))


def train_and_score(train_xy, test_xy, static: bool, seed: int, steps: int) -> float:
    """Test mAP of the tiny VideoMAE after `steps` steps of BCE; `static`: every frame the clip's first."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    (x, y), (x_test, y_test) = train_xy, test_xy
    if static:
        x, x_test = x[:, :1].expand_as(x), x_test[:, :1].expand_as(x_test)
    torch.manual_seed(seed)
    model = VideoMAEForVideoClassification(VideoMAEConfig(
        image_size=64, patch_size=16, num_frames=8, tubelet_size=2, hidden_size=96, num_hidden_layers=3,
        num_attention_heads=4, intermediate_size=384, use_mean_pooling=True, num_labels=y.shape[1]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    warmup = steps // 10
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else (steps - s) / (steps - warmup))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(0, len(x), (8,), generator=generator)
        TASK.loss(model(pixel_values=x[batch]).logits, y[batch]).backward()
        optimizer.step(), schedule.step(), optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        scores = torch.cat([TASK.scores(model(pixel_values=x_test[i:i + 50]).logits) for i in range(0, len(x_test), 50)])
    return TASK.headline(scores, list(y_test))


def chance(y_test: torch.Tensor, draws: int = 200) -> tuple[float, float]:
    """Mean and 99.9th percentile of the mAP random scores get on these labels."""
    rng = torch.Generator().manual_seed(0)
    values = [TASK.headline(torch.rand(y_test.shape, generator=rng), list(y_test)) for _ in range(draws)]
    return float(np.mean(values)), float(np.quantile(values, 0.999))


def saved_scores(run: Path, split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(class names, (videos, classes) scores, (videos, classes) bool labels) of a run's scores_<split>.json;
    test's scores come from the folded model, so each class's folded threshold is taken back out of them."""
    rows = json.loads((run / f"scores_{split}.json").read_text())
    names = list(rows[0]["scores"])
    scores = np.array([[row["scores"][n] for n in names] for row in rows], dtype=np.float64)
    folded = json.loads((run / "config.json").read_text()).get("label_thresholds_folded")
    if split != "val" and folded:  # sigmoid(logit(s) + logit(t)): the score before folding
        t = np.clip(np.array([folded[n] for n in names]), 1e-6, 1 - 1e-6)
        s = np.clip(scores, 1e-12, 1 - 1e-12)
        scores = 1 / (1 + np.exp(-(np.log(s / (1 - s)) + np.log(t / (1 - t)))))
    labels = np.array([[n in split_labels(row["label"]) for n in names] for row in rows])
    return names, scores, labels


def demo_table(test: dict) -> None:
    """The demo run's test numbers: mAP four ways, exact match three ways, AP per class."""
    print(f"| demo ({CONFIG.name}, through train.py) | mAP 5x3 | mAP 1x1 | mAP clip level | mAP stock pipeline |")
    print("|---|---|---|---|---|")
    print(f"| test, {test['videos']} videos | {test['mAP']:.3f} | {test['centre_view_mAP']:.3f} | "
          f"{test['clip_mAP']:.3f} | {test['pipeline_mAP']:.3f} |\n")
    print(f"exact match: at 0.5 {test['at_0.5_exact_match']:.3f}, at the thresholds chosen on val (folded) "
          f"{test.get('at_thresholds_exact_match', float('nan')):.3f}, stock pipeline "
          f"{test.get('pipeline_exact_match') or float('nan'):.3f}")
    print("AP per class: " + ", ".join(f"{name} {c['ap']:.3f}" for name, c in test["per_class"].items()) + "\n",
          flush=True)


def threshold_rules(run: Path) -> None:
    """Each rule's thresholds chosen on val, and its exact match and micro F1 on val and test."""
    names, val, val_y = saved_scores(run, "val")
    test_names, test, test_y = saved_scores(run, "test")
    assert test_names == names, (names, test_names)

    def rates(s: np.ndarray, y: np.ndarray, t: np.ndarray) -> tuple[float, float]:
        p = s >= t
        tp = (p & y).sum()
        return float((p == y).all(1).mean()), float(2 * tp / max(p.sum() + y.sum(), 1))

    f1 = np.array(TASK.choose_thresholds(torch.from_numpy(val), [torch.from_numpy(r).float() for r in val_y]))
    cuts = np.unique(np.concatenate([val.ravel(), [0.0, 1.0]]))
    cuts = (cuts[:-1] + cuts[1:]) / 2  # between two val scores: the same predictions on val, off every score
    shared = max(cuts, key=lambda c: (rates(val, val_y, np.full(len(names), c))[0], -abs(c - 0.5)))
    rules = {"0.5 for every class": np.full(len(names), 0.5),
             "per-class best F1 on val (train.py)": f1,
             "per-class best F1 on val, floor 0.5": np.maximum(f1, 0.5),
             f"one shared, best exact match on val ({shared:.3f})": np.full(len(names), shared)}
    print(f"threshold rules on {run} (val {len(val)} videos, test {len(test)} videos)")
    print("| rule | thresholds | val exact match | val micro F1 | test exact match | test micro F1 |")
    print("|---|---|---|---|---|---|")
    for rule, t in rules.items():
        (v_em, v_f1), (t_em, t_f1) = rates(val, val_y, t), rates(test, test_y, t)
        print(f"| {rule} | {t.min():.2f}-{t.max():.2f} | {v_em:.3f} | {v_f1:.3f} | {t_em:.3f} | {t_f1:.3f} |")
    print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1500, help="steps of each hand-trained control model")
    parser.add_argument("--skip-demo", action="store_true", help="only the control (the demo run is reused anyway)")
    parser.add_argument("--rules-only", action="store_true", help="only the threshold rules, on a finished demo run")
    args = parser.parse_args(argv)
    config = load_config(CONFIG)
    if args.rules_only:
        run = Path(config.train.output_dir)
        demo_table(json.loads((run / "metrics.json").read_text())["test"])
        threshold_rules(run)
        return
    prepare(config.data)
    if not args.skip_demo:
        demo_table(train(config)["test"])  # a finished run of the same config is reused
        threshold_rules(Path(config.train.output_dir))
    start = time.perf_counter()
    train_xy, test_xy = clips(Path(config.data.root))
    mean, high = chance(test_xy[1])
    print(f"control: {len(train_xy[1])} training clips, {len(test_xy[1])} test centre clips, decoded in "
          f"{time.perf_counter() - start:.0f} s; random scores: mAP {mean:.3f} (99.9th percentile {high:.3f})")
    print("| seed | motion mAP | one repeated frame mAP | chance mAP | seconds |")
    print("|---|---|---|---|---|")
    for seed in range(args.seeds):
        start = time.perf_counter()
        motion = train_and_score(train_xy, test_xy, static=False, seed=seed, steps=args.steps)
        static = train_and_score(train_xy, test_xy, static=True, seed=seed, steps=args.steps)
        print(f"| {seed} | {motion:.3f} | {static:.3f} | {mean:.3f} | {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
