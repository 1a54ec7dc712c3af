"""Predict the labels of videos with a trained model (a folder or a Hub id).

    python infer.py VIDEO_OR_FOLDER [...] [--model FOLDER_OR_HUB_ID] [--top-k K] [--clips N] [--crops M]
                    [--mode manual|pipeline] [--json]
"""

from __future__ import annotations

import json
from dataclasses import asdict

from video_classifier.cli import add_view_args, config_parser, view_overrides
from video_classifier.config import load_config
from video_classifier.errors import exit_on_user_error
from video_classifier.inference import format_table, predict


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="+", metavar="VIDEO_OR_FOLDER", help="video files, or folders to search")
    parser.add_argument("--model", help="trained model folder or Hub id (default: the config's train.output_dir)")
    parser.add_argument("--top-k", type=int, help="labels to show per video (default: infer.top_k)")
    add_view_args(parser)
    parser.add_argument("--mode", choices=["manual", "pipeline"], help="default: infer.mode")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    config = load_config(args.config, view_overrides(args))
    predictions = predict(
        model_ref=args.model or config.train.output_dir,
        paths=args.videos,
        config=config,
        top_k=args.top_k or config.infer.top_k,
        mode=args.mode or config.infer.mode,
    )
    print(json.dumps([asdict(p) for p in predictions], indent=2) if args.json else format_table(predictions))


if __name__ == "__main__":
    main()
