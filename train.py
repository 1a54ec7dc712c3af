"""Fine-tune a video classifier (VideoMAE by default) on a prepared dataset.

    python train.py --config config.yaml [--set train.epochs=2]
"""

from __future__ import annotations

from video_classifier.core.cli import DEFAULT_CONFIG, config_parser
from video_classifier.core.config import load_config
from video_classifier.core.errors import exit_on_user_error
from video_classifier.core.preflight import check_hub_files, training_files


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = config_parser(__doc__.splitlines()[0]).parse_args(argv)
    config = load_config(args.config or DEFAULT_CONFIG, args.overrides)
    check_hub_files(training_files(config))  # before seconds of imports: at once offline
    from video_classifier.engine.training import train  # torch and transformers come in only now

    train(config)


if __name__ == "__main__":
    main()
