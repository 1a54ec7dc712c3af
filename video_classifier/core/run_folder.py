"""The run folder (train.output_dir): the names of what a run writes there, the mark that says a run of ours
made the folder, and what a new run does with a folder that is already there: reuse a finished run of the
same config, resume an interrupted one, or clear what runs of ours wrote and keep everything else. Every
script, the model card and the export ask here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from transformers.trainer_utils import get_last_checkpoint

from .config import Config
from .errors import UserError

METRICS = "metrics.json"  # the final evaluation of val and test
RESOLVED_CONFIG = "config.yaml"  # the config the run was trained with, every default filled in
FAILURES = "decode_failures.csv"  # clips that did not decode: split, video, reason
CARD = "README.md"  # the model card
TRAINING_PLOT = "training.png"  # loss and validation metric per step
ADAPTER = "adapter"  # a LoRA run's adapter (the merged model is the folder itself)
EXPORT = "onnx"  # export.py's default folder inside the run folder
ONNX_FILE = "model.onnx"  # in an export folder
OPENVINO_FILE = "model.xml"  # in an OpenVINO int8 export folder (with model.bin): NNCF's quantized model
PARITY_FILE = "parity.json"  # in an export folder: ONNX against torch on real clips

# Every run folder train.py starts is marked with this file; overwrite_output_dir clears only marked
# folders, and in them only the entries a run writes (OURS), never anything else.
MARKER = ".video-classifier-run"
OURS = ("checkpoint-*", "runs", "model.safetensors", "model-*.safetensors", "model.safetensors.index.json",
        "config.json", "preprocessor_config.json", "video_preprocessor_config.json", "training_args.bin",
        "labels.json", RESOLVED_CONFIG, METRICS, TRAINING_PLOT, "confusion_*.png", "per_class_*.png",
        "scores_*.json", "eval_*.json", CARD, FAILURES, MARKER, ADAPTER)


def finished_run(config: Config) -> dict[str, Any] | None:
    """The metrics of a finished run of this same config in the output folder, if there is one; a finished
    run of another config is refused (nothing is overwritten without train.overwrite_output_dir)."""
    out = Path(config.train.output_dir)
    if config.train.overwrite_output_dir or not (out / METRICS).is_file():
        return None
    saved = out / RESOLVED_CONFIG
    if not saved.is_file() or yaml.safe_load(saved.read_text()) != config.to_dict():
        raise UserError(
            f"output folder {out} already holds a finished run with another config: "
            "set train.output_dir to a new folder, or --set train.overwrite_output_dir=true"
        )
    return json.loads((out / METRICS).read_text())


def last_checkpoint(out: Path) -> str | None:
    """The newest checkpoint-N folder in `out` (None: none, or no folder)."""
    return get_last_checkpoint(str(out)) if out.is_dir() else None


def clear_output_dir(out: Path) -> list[str]:
    """Delete what runs of ours wrote in `out`, a folder a run of ours marked; returns the names of the
    entries kept (not ours). An unmarked folder with anything in it is refused: it may be the user's."""
    entries = sorted(out.iterdir())
    if not (out / MARKER).is_file():
        if entries:
            raise UserError(
                f"train.overwrite_output_dir: output folder {out} was not made by train.py (no {MARKER} in it), so "
                f"nothing in it is deleted: set train.output_dir to a new folder, or empty {out} yourself"
            )
        return []
    kept = []
    for entry in entries:
        if not any(entry.match(pattern) for pattern in OURS):
            kept.append(entry.name)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return kept


def resume_point(config: Config) -> str | None:
    """The last checkpoint of an interrupted run to resume from; None to start afresh (after clearing the
    last run's files with train.overwrite_output_dir)."""
    out = Path(config.train.output_dir)
    if not out.is_dir():
        return None
    if config.train.overwrite_output_dir:
        kept = clear_output_dir(out)
        if kept:
            print(f"train.overwrite_output_dir: cleared the last run in {out}; kept {len(kept)} entries train.py "
                  f"did not write ({', '.join(kept[:3])}{', ...' if len(kept) > 3 else ''})")
        return None
    last = last_checkpoint(out)
    if last is None and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UserError(
            f"output folder {out} exists and holds no training run of ours: "
            "set train.output_dir to a new folder, or --set train.overwrite_output_dir=true"
        )
    return last


def mark(out: Path) -> None:
    """Make the run folder, marked as ours."""
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by train.py: train.overwrite_output_dir may clear what it wrote here\n")
