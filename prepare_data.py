"""Download and extract the UCF101 subset, or make the synthetic one, and write the label maps.

    python prepare_data.py --config config.yaml
"""

from __future__ import annotations

from video_classifier.cli import config_parser
from video_classifier.config import load_config
from video_classifier.errors import exit_on_user_error
from video_classifier.prepare import prepare


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = config_parser(__doc__.splitlines()[0]).parse_args(argv)
    config = load_config(args.config, args.overrides)
    prepare(config.data)


if __name__ == "__main__":
    main()
