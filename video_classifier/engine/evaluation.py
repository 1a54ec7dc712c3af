"""Evaluation as the VideoMAE paper does it: several views per video, softmax averaged.

Video level: `num_clips` clips spread over each video x `num_crops` crops, the
softmax of all views averaged (top-1, top-5, mean class accuracy, per-class
scores, confusion matrix). Clip level, alongside: every consecutive clip of
each video with one centre crop, each scored alone, the number the Hugging Face
guide reports. 1 clip x 1 crop: the centre view alone. And the stock pipeline:
transformers' `pipeline("video-classification")` on the saved folder, as the
model's users on the Hub will call it. The scoring itself is scoring.py's, which
inference calls too, so a video gets exactly the scores evaluation computed; the
metrics are the task's (task.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from ..core.config import Config  # noqa: E402
from ..core.errors import UserError, first_line  # noqa: E402
from ..core.task import MultiLabel, SingleLabel, Task  # noqa: E402
from ..data.clips import DecodeFailures  # noqa: E402
from ..data.datasets import ClipDataset, ViewDataset  # noqa: E402
from ..data.decoding import announce, choose_decoder, decode_pyav, probe_header, torchcodec_problem  # noqa: E402
from ..data.manifest import VideoRecord  # noqa: E402
from ..data.storage import video_source  # noqa: E402
from ..model.folding import TEMPERATURE  # noqa: E402
from ..model.model_spec import ModelSpec  # noqa: E402
from .calibration import (  # noqa: E402
    each_view,
    expected_calibration_error,
    fit_temperature,
    plot_reliability,
    rescaled,
    view_ece,
)
from .open_set import accept_threshold, max_probability  # noqa: E402
from .scoring import clip_scores, video_scores, video_scores_each  # noqa: E402


def plot_confusion(matrix: list[list[int]], class_names: list[str], title: str, path: Path) -> None:
    size = max(4.0, 0.5 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(np.asarray(matrix), cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            if count:
                ax.text(j, i, count, ha="center", va="center", color="white" if count > peak / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_per_class(per_class: dict[str, dict[str, Any]], title: str, path: Path) -> None:
    """Multi-label: each class's average precision and F1 (at its threshold), with its number of videos."""
    names = list(per_class)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(names) + 2), 4))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [per_class[n]["ap"] or 0 for n in names], 0.4, label="average precision")
    ax.bar(x + 0.2, [per_class[n]["f1"] for n in names], 0.4, label="F1 at its threshold")
    ax.set_xticks(x, [f"{n} ({per_class[n]['support']})" for n in names], rotation=45, ha="right")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate_split(model: Any, spec: ModelSpec, views: ViewDataset, clips: ClipDataset, class_names: list[str],
                   split: str, batch_size: int, workers: int, out: Path, name: str, fit: bool = False,
                   accept: float = 0.95) -> tuple[dict[str, Any], ModelSpec]:
    """Video- and clip-level metrics of one split; writes the confusion matrix PNG (multi-label: per-class
    AP and F1) and per-video scores. `fit`: the task first chooses what it chooses on this split (multi-
    label: per-class thresholds); the spec returned carries that task."""
    view_probs = video_scores(model, spec, views, batch_size, workers, desc=f"{split} videos", per_view=True)
    # videos that did not decode (NaN) are left out of every number, and listed
    kept = ~view_probs.isnan().any(-1).any(-1)
    if not kept.any():
        raise UserError(f"none of the {len(kept)} {split} videos in {views.root} decodes: check the data folder "
                        "(prepare it again)")
    records = [r for r, k in zip(views.records, kept.tolist()) if k]
    view_probs, probs = view_probs[kept], view_probs[kept].mean(1)
    task, label2id = spec.task, views.label2id
    labels = [task.target(r.label, label2id) for r in records]
    metrics = {"views": f"{views.num_clips} clips x {views.crops.num_crops} crops", "videos": len(labels),
               "videos_left_out": [r.path for r, k in zip(views.records, kept.tolist()) if not k]}
    if isinstance(task, SingleLabel):
        metrics.update(calibration_metrics(model, view_probs, probs, labels, fit, f"{split} ({metrics['views']})",
                                           out / f"reliability_{name}.png", accept))
    if spec.unknown is not None and not fit:  # the share of this split's (known) videos answered unknown
        metrics["unknown_threshold_used"] = spec.unknown
        metrics["answered_unknown"] = float((max_probability(probs) < spec.unknown).double().mean())
    if fit:
        task = task.fitted(probs, labels)
        spec = replace(spec, task=task)
        if getattr(task, "thresholds", None) is not None:
            metrics["thresholds"] = dict(zip(class_names, task.thresholds))  # chosen on this split
    metrics.update(task.video_metrics(probs, labels, class_names))
    # 1 clip x 1 crop: the centre view alone, one of the views above when their numbers are odd
    centre = views.centre_view()
    if centre is None:
        one = ViewDataset(records, views.root, label2id, spec.preprocess, 1, 1, views.decode, views.failures,
                          task=task)
        centre_probs = video_scores(model, spec, one, batch_size, workers, desc=f"{split} 1x1")
    else:
        centre_probs = view_probs[:, centre]
    headline = task.headline_name
    metrics[f"centre_view_{headline}"] = task.headline(centre_probs, labels)
    clip_probs = clip_scores(model, spec, clips, batch_size, workers)
    clip_labels = [task.target(clips.records[v].label, label2id) for v, _, _ in clips.items]
    decoded = ~clip_probs.isnan().any(-1)
    metrics[f"clip_{headline}"] = task.headline(clip_probs[decoded], [t for t, d in zip(clip_labels, decoded) if d])
    metrics["clips"], metrics["clips_left_out"] = int(decoded.sum()), int((~decoded).sum())
    title = f"{split}: video-level {headline} {metrics[headline]:.3f} ({metrics['views']})"
    out.mkdir(parents=True, exist_ok=True)
    if "confusion_matrix" in metrics:
        plot_confusion(metrics["confusion_matrix"]["rows_true_columns_predicted"], class_names, title,
                       out / f"confusion_{name}.png")
    else:
        plot_per_class(metrics["per_class"], title, out / f"per_class_{name}.png")
    scores = [{"video": r.path, "label": r.label, "scores": dict(zip(class_names, p.tolist()))}
              for r, p in zip(records, probs)]
    (out / f"scores_{name}.json").write_text(json.dumps(scores, indent=1) + "\n")
    return metrics, spec


def calibration_metrics(model: Any, view_probs: torch.Tensor, probs: torch.Tensor, labels: list[int], fit: bool,
                        title: str, plot: Path, accept: float = 0.95) -> dict[str, Any]:
    """ECE (15 bins) of a split's scores, each view's (`ece*`: what the temperature calibrates) and each video's
    averaged (`video_ece*`). On the split the temperature is fitted on (`fit`: val in training), the
    temperature, ECE before and after it, and the unknown threshold that accepts `accept` of its videos
    (open_set.py); on a model with a temperature folded in, ECE with it (these scores) and without it. The
    views' reliability diagram before and after into `plot`."""
    folded = getattr(getattr(model, "config", None), TEMPERATURE, None)
    if fit and folded is None:
        temperature = fit_temperature(view_probs, labels)
        views = {"before": view_probs, "after": rescaled(view_probs, temperature).float()}
        # the top score that `accept` of the val videos reach, calibrated (the model once T is folded) and not
        found = {"temperature": temperature,
                 "unknown_threshold": accept_threshold(max_probability(views["after"].mean(1)), accept),
                 "unknown_threshold_uncalibrated": accept_threshold(max_probability(probs), accept)}
    elif folded is not None:
        views = {"before": rescaled(view_probs, 1 / folded).float(), "after": view_probs}
        found = {"temperature": folded}
    else:
        return {"ece": view_ece(view_probs, labels), "video_ece": expected_calibration_error(probs, labels)}
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot_reliability(*(each_view(views[k], labels)[0] for k in ("before", "after")), each_view(view_probs, labels)[1],
                     f"{title}, each view", plot)
    return {**found, "ece_before": view_ece(views["before"], labels), "ece_after": view_ece(views["after"], labels),
            "ece": view_ece(view_probs, labels),
            "video_ece_before": expected_calibration_error(views["before"].mean(1), labels),
            "video_ece_after": expected_calibration_error(views["after"].mean(1), labels),
            "video_ece": expected_calibration_error(probs, labels)}


def stock_pipeline_score(folder: str | Path, records: list[VideoRecord], root: str | Path,
                        device: Any = None, desc: str = "stock pipeline", task: Task = SingleLabel(),
                        label2id: dict[str, int] | None = None) -> dict[str, Any]:
    """The task's headline (top-1; multi-label: mAP) of transformers' video-classification pipeline on
    `records`, called as its users call it: `pipeline("video-classification", model=folder)(video_path)`,
    its scores for every class read back (softmax or, multi-label, sigmoid: the pipeline's own choice).
    Where torchcodec does not load the pipeline cannot open a path, so it gets every frame decoded by
    PyAV instead (the same frames: it samples them as from a path). A video it raises on counts as
    wrong (scores of 0) and is counted. Multi-label: also the exact match of its labels at the model's
    thresholds, as its users read them (0.5: a trained model has its thresholds folded in)."""
    from transformers import pipeline

    classify = pipeline("video-classification", model=str(folder), device=device)
    label2id = label2id or {label: int(i) for i, label in classify.model.config.id2label.items()}
    by_path = torchcodec_problem() is None
    scores, failed = torch.zeros(len(records), len(label2id)), []
    for row, record in enumerate(tqdm(records, desc=desc, unit="video", leave=False)):
        path = video_source(root, record.path)  # a shard member or a URL is not a path the pipeline opens
        try:
            # a segment of a recording is given as its own frames (the pipeline reads a path whole)
            whole = by_path and isinstance(path, Path) and record.start == 0 and probe_header(path)[0] == record.frames
            video = str(path) if whole else decode_pyav(path, list(range(record.first_frame, record.first_frame
                                                                          + record.frames)), record.fps
                                                        ).permute(0, 2, 3, 1).numpy()
            for result in classify(video, top_k=len(label2id)):
                scores[row, label2id[result["label"]]] = result["score"]
        except Exception as err:  # the pipeline's own limits (e.g. fewer frames than the model takes)
            failed.append(f"{record.path}: {first_line(err)}")
    targets = [task.target(r.label, label2id) for r in records]
    answered = len(failed) < len(records)  # not: the pipeline raised on every video (VideoPrism's logits)
    sets = {"pipeline_exact_match": task.exact_match(scores, targets) if answered else None} \
        if isinstance(task, MultiLabel) else {}  # its labels read at the model's thresholds (0.5 once folded)
    return {
        f"pipeline_{task.headline_name}": task.headline(scores, targets) if answered else None, **sets,
        "pipeline_input": "video path (torchcodec)" if by_path else "every frame, decoded with PyAV",
        "pipeline_failed": failed,
    }


def bf16_agreement(model: Any, spec: ModelSpec, records: list[VideoRecord], config: Config, label2id: dict[str, int],
                   failures: DecodeFailures | None = None) -> dict[str, Any]:
    """The share of `records` (val) whose prediction (the task's: top-1, or a multi-label model's label set)
    bf16 keeps against fp32, each video scored from its centre view alone (1 clip x 1 crop: no averaging of
    views to hide a flip). infer.precision auto reads it (precision.py)."""
    decoder = choose_decoder("pyav" if config.data.backend == "pytorchvideo" else config.data.decoder).decode
    views = ViewDataset(records, config.data.root, label2id, spec.preprocess, 1, 1, decoder, failures, task=spec.task)
    scores = video_scores_each(model, {"fp32": replace(spec, autocast=None), "bf16": replace(spec, autocast=torch.bfloat16)},
                               views, config.eval.batch_size, config.data.workers(), desc="val fp32 and bf16")
    kept = ~(scores["fp32"].isnan().any(-1) | scores["bf16"].isnan().any(-1))
    fp32, bf16 = (spec.task.predicted(scores[name][kept]).reshape(int(kept.sum()), -1) for name in ("fp32", "bf16"))
    return {"agreement": float((fp32 == bf16).all(1).float().mean()) if kept.any() else None,
            "videos": int(kept.sum()), "views": "1 clip x 1 crop", "split": "val"}


def plot_training(log_history: list[dict[str, Any]], path: Path, metric: str = "accuracy") -> None:
    """Training and validation loss (left) and the validation `metric` (right; the task's best_metric)
    against epochs."""
    def series(key: str) -> list[tuple[float, float]]:
        return [(h["epoch"], h[key]) for h in log_history if key in h and "epoch" in h]

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label, style in (("loss", "training", "-"), ("eval_loss", "validation", "o-")):
        if series(key):
            left.plot(*zip(*series(key)), style, label=label)
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    if series(f"eval_{metric}"):
        right.plot(*zip(*series(f"eval_{metric}")), "o-")
    right.set_xlabel("epoch")
    right.set_ylabel(f"validation {metric} (per clip)")
    right.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate_model(model: Any, spec: ModelSpec, config: Config, by_split: dict[str, list[VideoRecord]],
                   label2id: dict[str, int], out: Path, metrics_name: str, tag: str = "",
                   saved: str | Path | None = None, pipeline_splits: tuple[str, ...] = ("test",),
                   failures: DecodeFailures | None = None, fit_on: str | None = None,
                   after_fit: Callable[[ModelSpec, dict[str, Any]], ModelSpec] | None = None) -> dict[str, Any]:
    """Evaluate every split of `by_split` with config.eval's views, and those of `pipeline_splits` with
    transformers' stock pipeline on the `saved` folder or Hub id when given; write `metrics_name`,
    confusion PNGs and per-video scores (named by split and `tag`) into `out`; print a summary line per
    split. Videos that do not decode are left out, listed in the metrics and recorded in `failures`
    (without it, one stops the evaluation with its name). `fit_on` (training: "val"): the split on which
    the task chooses what it chooses (multi-label: per-class thresholds, in metrics[fit_on]["thresholds"]),
    used for the splits after it, and a single-label model's temperature (metrics[fit_on]["temperature"]);
    `after_fit(spec, metrics[fit_on])` runs then and gives the spec they use (training: the thresholds or
    the temperature folded into the saved model)."""
    decoding = choose_decoder("pyav" if config.data.backend == "pytorchvideo" else config.data.decoder)
    announce(decoding)
    decoder = decoding.decode
    class_names = sorted(label2id, key=label2id.get)
    metrics = {}
    for split, records in by_split.items():
        views = ViewDataset(records, config.data.root, label2id, spec.preprocess, config.eval.num_clips,
                            config.eval.num_crops, decoder, failures, task=spec.task)
        clips = ClipDataset(records, config.data.root, label2id, spec.preprocess, train=False, decoder=decoder,
                            failures=failures, task=spec.task)
        metrics[split], spec = evaluate_split(model, spec, views, clips, class_names, split, config.eval.batch_size,
                                              config.data.workers(), out, f"{split}{tag}", fit=split == fit_on,
                                              accept=config.infer.unknown_accept)
        if split == fit_on and after_fit is not None:
            spec = after_fit(spec, metrics[split])
        m = metrics[split]
        if saved is not None and split in pipeline_splits:
            decoded = [r for r in records if r.path not in m["videos_left_out"]]
            m.update(stock_pipeline_score(saved, decoded, config.data.root, model.device, f"{split} stock pipeline",
                                         spec.task, label2id))
        piped = m.get(f"pipeline_{spec.task.headline_name}")
        print(
            f"{split}: {spec.task.summary(m)}"
            + (f"; stock pipeline {piped:.4f}" if piped is not None else "")
            + (f", exact match {m['pipeline_exact_match']:.4f}" if m.get("pipeline_exact_match") is not None else "")
            + (f" ({len(m['pipeline_failed'])} videos it raised on)" if m.get("pipeline_failed") else "")
            + (f"; ECE of the views {m['ece_before']:.4f} -> {m['ece_after']:.4f}, of the videos "
               f"{m['video_ece_before']:.4f} -> {m['video_ece_after']:.4f} at temperature {m['temperature']:.3f}"
               if "ece_after" in m else "")
            + (f"; {m['answered_unknown']:.1%} answered unknown (top score < {m['unknown_threshold_used']:.3f})"
               if "answered_unknown" in m else "")
            + (f"; {len(m['videos_left_out'])} videos left out: they do not decode" if m["videos_left_out"] else "")
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / metrics_name).write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"metrics, confusion matrices and per-video scores in {out}")
    return metrics
