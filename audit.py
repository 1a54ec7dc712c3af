"""Find what is wrong with a prepared folder: duplicates and leaks across splits, likely label errors,
blank, frozen and outlying videos, the classes most confused.

    python audit.py --config my.yaml [--model RUN_OR_CHECKPOINT] [--no-labels]

Run after prepare_data.py (before or after training). Writes <data.root>/audit/issues.csv
(path,split,issue,score,details), summary.json and report.html (each finding with frames of its videos).
The label check scores each video with a probe on the backbone's features that never saw it: --model's
(a trained run is best), else model.checkpoint's. docs/audit.md says how each finding is made.
"""

from __future__ import annotations

from video_classifier.core.cli import config_parser, config_path
from video_classifier.core.config import load_config
from video_classifier.core.errors import exit_on_user_error
from video_classifier.core.preflight import check_hub_files, model_files, training_files


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained run folder or checkpoint whose features the label check reads "
                                        "(default: model.checkpoint)")
    parser.add_argument("--no-labels", action="store_true",
                        help="skip the label check (no model: duplicates, leaks, blank, static and outliers only)")
    args = parser.parse_args(argv)
    config = load_config(config_path(args), args.overrides)
    if not args.no_labels:
        check_hub_files(model_files(args.model, config) if args.model else training_files(config))
    from video_classifier.engine.audit import audit, one_line  # torch comes in only now

    folder, summary, _ = audit(config, args.model, labels=not args.no_labels)
    print(f"audit of {summary['videos']} videos: {one_line(summary)}; see {folder}/report.html and issues.csv")


if __name__ == "__main__":
    main()
