"""audit.py's detectors on a folder corrupted on purpose: precision and recall of each, and the time per
1000 videos.

    python bench/audit.py [--seeds 3] [--model runs/demo]

Per seed, the demo's prepared videos (data/demo, `make demo`) become a user's own folder (data.source:
folder, a list CSV with path, label, split, group), corrupted: 5% of the labels swapped to another class;
10 videos copied with another codec (H.264 or VP9), rescaled (0.6-1.4x), cropped by up to 10% at a random
place and started up to 0.5 s late, each copy listed in another split than its original; 5 videos black
or frozen (one frame held). prepare_data.py prepares it; audit runs twice: with the features of --model (a
trained run: its backbone was trained on the clean demo's labels, so it has seen the true class of the
training videos), and with the config's checkpoint (the demo's randomly initialised tiny VideoMAE).

Scored against what was done: leaks (originals and copies together), label errors both as cleanlab's
likely errors (its confident learning) and among the top-ranked k label findings (k = the number swapped: there precision = recall), blank
and static (the 5 made). Asserts nothing; prints a table.
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import cpu_name  # noqa: E402
from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.data.manifest import load_prepared  # noqa: E402
from video_classifier.data.prepare import prepare  # noqa: E402
from video_classifier.engine.audit import audit  # noqa: E402

SWAPPED, COPIES, BROKEN = 0.05, 10, 5


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


def altered_copy(source: Path, out: Path, rng: random.Random) -> None:
    """Another codec, rescaled, cropped by up to 10% somewhere, started up to 0.5 s late."""
    crop_w, crop_h = 1 - rng.uniform(0, 0.1), 1 - rng.uniform(0, 0.1)
    scale = rng.uniform(0.6, 1.4)
    x, y = rng.uniform(0, 1 - crop_w), rng.uniform(0, 1 - crop_h)
    codec = ["-c:v", "libx264", "-crf", "28"] if rng.random() < 0.5 else ["-c:v", "libvpx-vp9", "-b:v", "300k"]
    filters = (f"crop=iw*{crop_w:.3f}:ih*{crop_h:.3f}:iw*{x:.3f}:ih*{y:.3f},"
               f"scale=trunc(iw*{scale:.3f}/2)*2:trunc(ih*{scale:.3f}/2)*2")
    ffmpeg("-ss", f"{rng.uniform(0, 0.5):.2f}", "-i", str(source), "-vf", filters, "-an", *codec, str(out))


def broken(source: Path, out: Path, kind: str) -> None:
    """A black video, or one frame of `source` held for 2 s."""
    if kind == "black":
        ffmpeg("-f", "lavfi", "-i", "color=black:s=128x96:r=25:d=2", "-c:v", "libx264", str(out))
    else:
        ffmpeg("-i", str(source), "-vf", "select=eq(n\\,10),loop=49:1:0,setpts=N/25/TB", "-frames:v", "50",
               "-r", "25", "-c:v", "libx264", str(out))


def corrupted_folder(demo_root: Path, work: Path, seed: int) -> tuple[Path, dict[str, set[str]]]:
    """The list CSV of a corrupted copy of the demo, and the truth: paths (as listed) per kind."""
    rng = random.Random(seed)
    label2id, records = load_prepared(demo_root)
    classes = sorted(label2id)
    rows = [{"path": str((demo_root / r.path).resolve()), "label": r.label, "split": r.split, "group": f"g{r.group}"}
            for r in records]
    truth: dict[str, set[str]] = {"label": set(), "leak": set(), "broken": set()}
    for row in rng.sample(rows, round(SWAPPED * len(rows))):
        row["label"] = rng.choice([c for c in classes if c != row["label"]])
        truth["label"].add(row["path"])
    copies = work / "copies"
    copies.mkdir(parents=True)
    for n, row in enumerate(rng.sample([r for r in rows if r["path"] not in truth["label"]], COPIES)):
        out = copies / f"copy{n:02d}.mp4"
        altered_copy(Path(row["path"]), out, rng)
        split = rng.choice([s for s in ("train", "val", "test") if s != row["split"]])
        rows.append({"path": str(out), "label": row["label"], "split": split, "group": f"copy{n}"})
        truth["leak"] |= {row["path"], str(out)}
    for n in range(BROKEN):
        out = copies / f"broken{n}.mp4"
        broken(Path(rng.choice(rows[:len(records)])["path"]), out, "black" if n % 2 == 0 else "frozen")
        rows.append({"path": str(out), "label": rng.choice(classes), "split": "train", "group": f"broken{n}"})
        truth["broken"].add(str(out))
    listed = work / "videos.csv"
    with open(listed, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "split", "group"])
        writer.writeheader()
        writer.writerows(rows)
    return listed, truth


def scores(found: set[str], truth: set[str]) -> tuple[float, float]:
    hit = len(found & truth)
    return (hit / len(found) if found else 1.0), (hit / len(truth) if truth else 1.0)


def measure(config, model: str | None, truth: dict[str, set[str]], source_of: dict[str, str]) -> dict[str, float]:
    """One audit, scored: (precision, recall) per detector, seconds per 1000 videos."""
    start = time.perf_counter()
    _, summary, findings = audit(config, model, report=False)
    per_1000 = (time.perf_counter() - start) / summary["videos"] * 1000

    def paths(*kinds: str) -> list[str]:
        return [source_of[f.path] for f in findings if f.issue in kinds]

    labels = paths("label")  # ranked, most likely first
    likely = {source_of[f.path] for f in findings if f.issue == "label" and "likely error" in f.details}
    k = len(truth["label"])
    return {"leak": scores(set(paths("leak")), truth["leak"]), "label (all)": scores(likely, truth["label"]),
            f"label (top {k})": scores(set(labels[:k]), truth["label"]),
            "blank+static": scores(set(paths("blank", "static")), truth["broken"]),
            "outliers": len(paths("outlier")), "duplicates": len(paths("duplicate")), "s/1000": per_1000,
            "probe_top1": summary.get("probe_top1", float("nan"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--model", default="runs/demo")
    args = parser.parse_args()
    demo = load_config(REPO / "configs" / "demo.yaml")
    rows = []
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as tmp:
            listed, truth = corrupted_folder(REPO / demo.data.root, Path(tmp), seed)
            config = load_config(REPO / "configs" / "demo.yaml",
                                 ["data.source=folder", f"data.videos={listed}", f"data.root={tmp}/prepared"])
            prepare(config.data)
            _, records = load_prepared(config.data.root)
            source_of = {r.path: str((Path(config.data.root) / r.path).resolve()) for r in records}
            for model, name in ((args.model, f"--model {args.model}"), (None, "model.checkpoint (random init)")):
                rows.append((seed, name, measure(config, model, truth, source_of)))
    print(f"\naudit.py on the corrupted demo ({cpu_name()}, torch threads as the audit sets them)\n")
    head = "| seed | features | leak P/R | label P/R (cleanlab's likely) | label P/R (top k) | blank+static P/R " \
           "| other outliers | duplicates | probe top-1 | s per 1000 videos |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for seed, name, m in rows:
        label_top = next(key for key in m if key.startswith("label (top"))
        cells = [str(seed), name] + [f"{m[k][0]:.2f} / {m[k][1]:.2f}" for k in
                                     ("leak", "label (all)", label_top, "blank+static")]
        cells += [str(m["outliers"]), str(m["duplicates"]), f"{m['probe_top1']:.3f}", f"{m['s/1000']:.0f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
