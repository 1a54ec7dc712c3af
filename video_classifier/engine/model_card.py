"""The output folder's README.md: a model card with the Hub's metadata and what a user of the model needs.

Metadata (huggingface_hub's ModelCardData): pipeline_tag video-classification,
base_model (a Hub checkpoint), datasets (a Hub dataset), and a model-index with
the test accuracies, so the Hub shows them. Body: the accuracy table (clip
level, 1 clip x 1 crop, multi-view, the stock pipeline), how to call the
pipeline, per-class scores, the confusion matrix, the training config and the
commands that reproduce the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..core.config import Config
from ..core.run_folder import CARD
from ..data.manifest import MANIFEST, load_prepared
from ..data.sources import source_of
from ..model.folding import FOLDED

# metrics.json key -> the metric's short name (the Hub's model-index) and what it is (the card's table)
ACCURACIES = (
    ("top1", "top-1, {views}", "{views}, softmax averaged (as the VideoMAE paper tests)"),
    ("centre_view_top1", "top-1, 1 clip x 1 crop", "1 clip x 1 crop (the centre view)"),
    ("clip_top1", "top-1, clip level", "clip level: each consecutive clip alone (the Hugging Face guide's number)"),
    ("pipeline_top1", "top-1, transformers pipeline", "`pipeline(\"video-classification\")` on the file"),
)
# multi-label runs: mean average precision over the classes, from the sigmoid scores
MEAN_APS = (
    ("mAP", "mAP, {views}", "mAP, {views}, sigmoid averaged"),
    ("centre_view_mAP", "mAP, 1 clip x 1 crop", "mAP, 1 clip x 1 crop (the centre view)"),
    ("clip_mAP", "mAP, clip level", "mAP, clip level: each consecutive clip alone"),
    ("pipeline_mAP", "mAP, transformers pipeline", "mAP, `pipeline(\"video-classification\")` on the file"),
)


def _hub_id(reference: str | None) -> str | None:
    """`reference` if it names a Hub repo rather than a local folder."""
    if not reference or Path(reference).expanduser().exists() or reference.startswith((".", "/", "~")):
        return None
    return reference if reference.count("/") == 1 else None


def model_card(config: Config, metrics: dict[str, Any], model_type: str, num_frames: int, out: Path) -> ModelCard:
    """The card of a finished run: `metrics` as metrics.json holds them."""
    name = (config.train.hub_model_id or out.name).split("/")[-1]
    base = _hub_id(config.model.checkpoint)
    source = source_of(config.data)
    dataset = source.hub_dataset(config.data)
    dataset_name = dataset or f"{source.name} videos ({Path(config.data.root).name})"
    test = metrics.get("test", {})
    multi_label = "mAP" in test
    table, metric = (MEAN_APS, "mAP") if multi_label else (ACCURACIES, "accuracy")
    views = test.get("views", "multi-view")
    results = [
        EvalResult(task_type="video-classification", task_name="Video Classification",
                   dataset_type=dataset or "local", dataset_name=dataset_name, dataset_split="test",
                   metric_type=metric, metric_value=round(float(test[key]), 4), metric_name=short.format(views=views))
        for key, short, _ in table if test.get(key) is not None
    ]
    data = ModelCardData(
        library_name="transformers", pipeline_tag="video-classification", base_model=base,
        datasets=[dataset] if dataset else None, metrics=[metric],
        tags=["video-classification", model_type] + (["multi-label-classification"] if multi_label else []),
        model_name=name, eval_results=results or None,
    )
    base_link = f"[{base}](https://huggingface.co/{base})" if base else config.model.checkpoint
    data_link = f"[{dataset}](https://huggingface.co/datasets/{dataset})" if dataset else dataset_name
    lines = [
        f"# {name}",
        "",
        f"A video classifier fine-tuned from {base_link} on {data_link}: {len(test.get('per_class', {}))} classes"
        + (" (multi-label: any number per video, each with its own sigmoid score and threshold)" if multi_label else "")
        + f", clips of {num_frames} frames taken every {config.data.sample_rate} frames.",
        "",
    ]
    lines += _metric_table(metrics, table, views, multi_label, _recordings(config)) + _how_to_use(config, out, num_frames)
    lines += _per_class(test, multi_label, _folded(out)) + _training(config)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def _recordings(config: Config) -> dict[str, int]:
    """Per split, the recordings a prepared folder's segments come from ({} where it holds whole files only)."""
    manifest = Path(config.data.root) / MANIFEST
    if not manifest.is_file():
        return {}
    _, records = load_prepared(config.data.root)
    if not any(r.start for r in records):
        return {}
    files: dict[str, set[str]] = {}
    for r in records:
        files.setdefault(r.split, set()).add(r.path)
    return {split: len(paths) for split, paths in files.items()}


def _metric_table(metrics: dict[str, Any], table: tuple, views: str, multi_label: bool,
                  recordings: dict[str, int]) -> list[str]:
    lines = [
        "## Mean average precision" if multi_label else "## Accuracy",
        "",
        "| split | " + " | ".join(long.format(views=views) for _, _, long in table) + " |",
        "|---" * (len(table) + 1) + "|",
    ]
    for split in ("val", "test"):
        if split in metrics:
            m = metrics[split]
            cells = [f"{m[key]:.3f}" if m.get(key) is not None else "not measured" for key, _, _ in table]
            counted = f"{m['videos']} segments of {recordings[split]} recordings" if split in recordings \
                else f"{m['videos']} videos"
            lines.append(f"| {split} ({counted}) | " + " | ".join(cells) + " |")
    return lines


def _how_to_use(config: Config, out: Path, num_frames: int) -> list[str]:
    stride = config.data.sample_rate
    return [
        "",
        "## How to use",
        "",
        "```python",
        "from transformers import pipeline",
        f'classifier = pipeline("video-classification", model="{config.train.hub_model_id or out}")',
        'classifier("video.mp4")',
        "```",
        "",
        f"The pipeline spreads {num_frames} frames over the whole video, while the model was evaluated on clips"
        f" of {num_frames} frames every {stride} frames"
        + (" (trained with the stride drawn per clip up to the pipeline's spacing: temporal-scale jitter)"
           if config.train.max_stride else " (and trained on them only)")
        + f". To show it exactly its evaluation view, pass the centre clip's {num_frames * stride} consecutive "
          f"frames as a `(T, H, W, 3)` uint8 array; the pipeline then takes one frame in {stride}:",
        "",
        "```python",
        f"classifier(frames[start:start + {num_frames * stride}])",
        "```",
        "",
    ]


def _folded(out: Path) -> dict[str, float] | None:
    """The thresholds folded into the saved classifier (config.json), if they were."""
    config = out / "config.json"
    return json.loads(config.read_text()).get(FOLDED) if config.is_file() else None


def _per_class(test: dict[str, Any], multi_label: bool, folded: dict[str, float] | None) -> list[str]:
    if not test.get("per_class"):
        return []
    if multi_label:
        chosen = folded or {label: c["threshold"] for label, c in test["per_class"].items()}
        said = ("folded into the classifier's bias (config.json `label_thresholds_folded`): a label is on where its "
                "score passes 0.5, for infer.py and the stock pipeline alike" if folded else
                "kept in config.json (`label_thresholds`), where infer.py reads them")
        lines = ["## Per class (test)", "", f"Thresholds chosen on val (each class's best F1), {said}.", "",
                 "| class | AP | threshold chosen on val | precision | recall | F1 | videos |",
                 "|---|---|---|---|---|---|---|"]
        lines += [f"| {label} | {'n/a' if c['ap'] is None else format(c['ap'], '.3f')} | {chosen[label]:.3f} | "
                  f"{c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |"
                  for label, c in test["per_class"].items()]
        return lines + ["", "![per-class AP and F1 of the test split](per_class_test.png)", ""]
    lines = ["## Per class (test)", "", "| class | precision | recall | F1 | videos |", "|---|---|---|---|---|"]
    lines += [f"| {label} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |"
              for label, c in test["per_class"].items()]
    return lines + ["", "![confusion matrix of the test split](confusion_test.png)", ""]


def _training(config: Config) -> list[str]:
    return [
        "## Training",
        "",
        "The run's resolved config (`config.yaml` in this repository):",
        "",
        "```yaml",
        yaml.safe_dump(config.to_dict(), sort_keys=False).strip(),
        "```",
        "",
        "To reproduce it, with that file as `config.yaml`:",
        "",
        "```bash",
        "python prepare_data.py --config config.yaml",
        "python train.py --config config.yaml",
        "```",
        "",
    ]


def write_model_card(config: Config, metrics: dict[str, Any], model_type: str, num_frames: int, out: Path) -> Path:
    path = out / CARD
    model_card(config, metrics, model_type, num_frames, out).save(path)
    return path


TIMELINE_SECTION = "## The timeline against annotations"


def add_timeline(out: Path, metrics: dict[str, Any], split: str, pictures: list[str]) -> Path | None:
    """The card in `out` (if there is one) with eval.py --timeline's numbers on `split` and its first
    pictures, as its last section (replacing the one an earlier evaluation wrote)."""
    path = out / CARD
    if not path.is_file():
        return None
    text = path.read_text()
    if TIMELINE_SECTION in text:
        text = text[:text.index(TIMELINE_SECTION)]
    alarms = metrics["false_alarms_per_hour"]
    lines = [TIMELINE_SECTION, "",
             f"`eval.py --timeline` on the {metrics['recordings']} {split} recordings, the timeline at its defaults "
             "against their annotations (background where none):", "",
             "| frame accuracy | F1@0.10 | F1@0.25 | F1@0.50 | edit | mAP@0.5 | actions found | false alarms / h |",
             "|---|---|---|---|---|---|---|---|",
             f"| {metrics['frame_accuracy']:.3f} | {metrics['f1@0.10']:.3f} | {metrics['f1@0.25']:.3f} | "
             f"{metrics['f1@0.50']:.3f} | {metrics['edit']:.3f} | {metrics['map@0.5']:.3f} | "
             f"{metrics['actions_found']} of {metrics['actions']} | {'-' if alarms is None else f'{alarms:.1f}'} |", ""]
    lines += [f"![predicted above annotated: {name}]({name})" for name in pictures] + [""]
    path.write_text(text.rstrip() + "\n\n" + "\n".join(lines))
    return path
