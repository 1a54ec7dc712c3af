"""Command-line pieces the three scripts share."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CONFIG = "config.yaml"


def config_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", help=f"YAML config (default: {DEFAULT_CONFIG}; for a script given --model "
                                          "FOLDER, the run's own FOLDER/config.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=2 (repeatable)",
    )
    return parser


def config_path(args: argparse.Namespace) -> str:
    """The config a script reads: --config when given; else, when --model is a folder a training run
    wrote (it holds the run's resolved config.yaml: data root, views, decoder), that one, said on stderr;
    else config.yaml."""
    if args.config:
        return args.config
    model = getattr(args, "model", None)
    if model and (Path(model) / DEFAULT_CONFIG).is_file():
        own = str(Path(model) / DEFAULT_CONFIG)
        print(f"config: {own}, the run's own (--config to use another)", file=sys.stderr)
        return own
    return DEFAULT_CONFIG


def add_view_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clips", type=int, help="clips per video, spread over it (default: eval.num_clips)")
    parser.add_argument("--crops", type=int, help="crops per clip along the long side (default: eval.num_crops)")


def view_overrides(args: argparse.Namespace) -> list[str]:
    """--set overrides plus --clips/--crops as eval.num_clips/eval.num_crops, validated like any key."""
    overrides = list(args.overrides)
    overrides += [f"eval.num_clips={args.clips}"] * (args.clips is not None)
    overrides += [f"eval.num_crops={args.crops}"] * (args.crops is not None)
    return overrides
