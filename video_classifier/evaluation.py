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
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from .config import Config  # noqa: E402
from .data import ClipDataset, DecodeFailures, ViewDataset  # noqa: E402
from .decoding import announce, choose_decoder, decode_pyav, torchcodec_problem  # noqa: E402
from .errors import UserError, first_line  # noqa: E402
from .model_spec import ModelSpec  # noqa: E402
from .scoring import clip_scores, video_scores  # noqa: E402
from .prepare import VideoRecord  # noqa: E402


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


def evaluate_split(model: Any, spec: ModelSpec, views: ViewDataset, clips: ClipDataset, class_names: list[str],
                   split: str, batch_size: int, workers: int, out: Path, name: str) -> dict[str, Any]:
    """Video- and clip-level metrics of one split; writes the confusion matrix PNG and per-video scores."""
    view_probs = video_scores(model, spec, views, batch_size, workers, desc=f"{split} videos", per_view=True)
    # videos that did not decode (NaN) are left out of every number, and listed
    kept = ~view_probs.isnan().any(-1).any(-1)
    if not kept.any():
        raise UserError(f"none of the {len(kept)} {split} videos in {views.root} decodes: check the data folder "
                        "(prepare it again)")
    records = [r for r, k in zip(views.records, kept.tolist()) if k]
    view_probs, probs = view_probs[kept], view_probs[kept].mean(1)
    labels = [views.label2id[r.label] for r in records]
    metrics = {"views": f"{views.num_clips} clips x {views.crops.num_crops} crops", "videos": len(labels),
               "videos_left_out": [r.path for r, k in zip(views.records, kept.tolist()) if not k]}
    metrics.update(spec.task.video_metrics(probs, labels, class_names))
    # 1 clip x 1 crop: the centre view alone, one of the views above when their numbers are odd
    centre = views.centre_view()
    if centre is None:
        one = ViewDataset(records, views.root, views.label2id, spec.preprocess, 1, 1, views.decode, views.failures)
        centre_probs = video_scores(model, spec, one, batch_size, workers, desc=f"{split} 1x1")
    else:
        centre_probs = view_probs[:, centre]
    metrics["centre_view_top1"] = spec.task.top1(centre_probs, torch.tensor(labels))
    clip_probs = clip_scores(model, spec, clips, batch_size, workers)
    clip_labels = torch.tensor([clips.label2id[clips.records[v].label] for v, _, _ in clips.items])
    decoded = ~clip_probs.isnan().any(-1)
    metrics["clip_top1"] = spec.task.top1(clip_probs[decoded], clip_labels[decoded])
    metrics["clips"], metrics["clips_left_out"] = int(decoded.sum()), int((~decoded).sum())
    title = f"{split}: video-level top-1 {metrics['top1']:.3f} ({metrics['views']})"
    out.mkdir(parents=True, exist_ok=True)
    plot_confusion(metrics["confusion_matrix"]["rows_true_columns_predicted"], class_names, title,
                   out / f"confusion_{name}.png")
    scores = [{"video": r.path, "label": r.label, "scores": dict(zip(class_names, p.tolist()))}
              for r, p in zip(records, probs)]
    (out / f"scores_{name}.json").write_text(json.dumps(scores, indent=1) + "\n")
    return metrics


def stock_pipeline_top1(folder: str | Path, records: list[VideoRecord], root: str | Path,
                        device: Any = None, desc: str = "stock pipeline") -> dict[str, Any]:
    """Top-1 of transformers' video-classification pipeline on `records`, called as its users call it:
    `pipeline("video-classification", model=folder)(video_path)`. Where torchcodec does not load the
    pipeline cannot open a path, so it gets every frame decoded by PyAV instead (the same frames:
    it samples them as from a path). A video it raises on counts as wrong and is counted."""
    from transformers import pipeline

    classify = pipeline("video-classification", model=str(folder), device=device)
    by_path = torchcodec_problem() is None
    right, failed = 0, []
    for record in tqdm(records, desc=desc, unit="video", leave=False):
        path = Path(root) / record.path
        try:
            video = str(path) if by_path else \
                decode_pyav(path, list(range(record.frames)), record.fps).permute(0, 2, 3, 1).numpy()
            right += classify(video, top_k=1)[0]["label"] == record.label
        except Exception as err:  # the pipeline's own limits (e.g. fewer frames than the model takes)
            failed.append(f"{record.path}: {first_line(err)}")
    return {  # None: the pipeline raised on every video (e.g. it cannot read VideoPrism's logits)
        "pipeline_top1": right / len(records) if len(failed) < len(records) else None,
        "pipeline_input": "video path (torchcodec)" if by_path else "every frame, decoded with PyAV",
        "pipeline_failed": failed,
    }


def plot_training(log_history: list[dict[str, Any]], path: Path) -> None:
    """Training and validation loss (left) and validation accuracy (right) against epochs."""
    def series(key: str) -> list[tuple[float, float]]:
        return [(h["epoch"], h[key]) for h in log_history if key in h and "epoch" in h]

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label, style in (("loss", "training", "-"), ("eval_loss", "validation", "o-")):
        if series(key):
            left.plot(*zip(*series(key)), style, label=label)
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    if series("eval_accuracy"):
        right.plot(*zip(*series("eval_accuracy")), "o-")
    right.set_xlabel("epoch")
    right.set_ylabel("validation accuracy (per clip)")
    right.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate_model(model: Any, spec: ModelSpec, config: Config, by_split: dict[str, list[VideoRecord]],
                   label2id: dict[str, int], out: Path, metrics_name: str, tag: str = "",
                   saved: str | Path | None = None, pipeline_splits: tuple[str, ...] = ("test",),
                   failures: DecodeFailures | None = None) -> dict[str, Any]:
    """Evaluate every split of `by_split` with config.eval's views, and those of `pipeline_splits` with
    transformers' stock pipeline on the `saved` folder or Hub id when given; write `metrics_name`,
    confusion PNGs and per-video scores (named by split and `tag`) into `out`; print a summary line per
    split. Videos that do not decode are left out, listed in the metrics and recorded in `failures`
    (without it, one stops the evaluation with its name)."""
    decoding = choose_decoder("pyav" if config.data.backend == "pytorchvideo" else config.data.decoder)
    announce(decoding)
    decoder = decoding.decode
    class_names = sorted(label2id, key=label2id.get)
    metrics = {}
    for split, records in by_split.items():
        views = ViewDataset(records, config.data.root, label2id, spec.preprocess, config.eval.num_clips,
                            config.eval.num_crops, decoder, failures)
        clips = ClipDataset(records, config.data.root, label2id, spec.preprocess, train=False, decoder=decoder,
                            failures=failures)
        metrics[split] = evaluate_split(model, spec, views, clips, class_names, split, config.eval.batch_size,
                                        config.data.workers(), out, f"{split}{tag}")
        m = metrics[split]
        if saved is not None and split in pipeline_splits:
            decoded = [r for r in records if r.path not in m["videos_left_out"]]
            m.update(stock_pipeline_top1(saved, decoded, config.data.root, model.device, f"{split} stock pipeline"))
        print(
            f"{split}: video-level top-1 {m['top1']:.4f}, top-5 {m['top5']:.4f}, "
            f"mean class accuracy {m['mean_class_accuracy']:.4f} ({m['views']}, {m['videos']} videos); "
            f"1 clip x 1 crop {m['centre_view_top1']:.4f}; clip-level top-1 {m['clip_top1']:.4f} ({m['clips']} clips)"
            + (f"; stock pipeline {m['pipeline_top1']:.4f}" if m.get("pipeline_top1") is not None else "")
            + (f" ({len(m['pipeline_failed'])} videos it raised on)" if m.get("pipeline_failed") else "")
            + (f"; {len(m['videos_left_out'])} videos left out: they do not decode" if m["videos_left_out"] else "")
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / metrics_name).write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"metrics, confusion matrices and per-video scores in {out}")
    return metrics
