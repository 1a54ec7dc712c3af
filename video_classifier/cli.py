"""Command-line pieces the three scripts share."""

from __future__ import annotations

import argparse


def config_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default="config.yaml", help="YAML config (default: config.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=2 (repeatable)",
    )
    return parser


def add_view_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clips", type=int, help="clips per video, spread over it (default: eval.num_clips)")
    parser.add_argument("--crops", type=int, help="crops per clip along the long side (default: eval.num_crops)")


def view_overrides(args: argparse.Namespace) -> list[str]:
    """--set overrides plus --clips/--crops as eval.num_clips/eval.num_crops, validated like any key."""
    overrides = list(args.overrides)
    overrides += [f"eval.num_clips={args.clips}"] * (args.clips is not None)
    overrides += [f"eval.num_crops={args.crops}"] * (args.crops is not None)
    return overrides
