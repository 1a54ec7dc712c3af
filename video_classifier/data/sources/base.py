"""What every data source offers (`data.source`): the interface that prepare.py and datasets.py ask, and
the answers of a source that prepares a folder of local videos and trains on it map-style."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...core.config import DataConfig
from ...core.errors import UserError
from ...core.task import Task
from ..clips import DecodeFailures
from ..decoding import Decoding
from ..manifest import VideoRecord
from ..preprocessing import PreprocessSpec


class Source:
    """One value of `data.source`. `refuses`: what it does not offer, and why, in one line."""

    name = ""
    refuses = ""

    def check(self, data: DataConfig) -> None:
        """Refuse, in one line, settings of `data` this source cannot read or train with (its own block
        missing, a stream on another backend than native). Asked by source_of, so before any use."""
        if self.streams(data) and data.backend != "native":
            raise UserError(f"data.backend: {self.name}'s training data is a stream ({self.stream_setting}), which "
                            "trains through the native backend; set backend: native")

    stream_setting = ""  # the setting that makes the source stream, for the message above

    def record(self, data: DataConfig) -> dict[str, Any]:
        """What decides a prepared folder's content besides the source's name (prepared_from.json): a rerun
        with other values refuses to mix them."""
        return {}

    def in_place(self, data: DataConfig) -> str | None:
        """For a source read where it is (nothing prepared): one line on it, after checking it reads; None for
        a source that prepare.py writes into a folder."""
        return None

    def prepare(self, data: DataConfig, out: Path, full: bool) -> tuple[list[VideoRecord], bool]:
        """Write the source's videos (or lists of them) into `out`; their records, and whether they are
        multi-label. `full`: decode each of the user's videos whole to check it (else sampled)."""
        raise NotImplementedError

    def streams(self, data: DataConfig) -> bool:
        """Whether training reads a stream (no length, no sampler, no per-video index)."""
        return False

    def training_stream(self, data: DataConfig, records: list[VideoRecord], label2id: dict[str, int],
                        spec: PreprocessSpec, decoding: Decoding, failures: DecodeFailures | None,
                        task: Task, max_stride: float | None = None) -> tuple[torch.utils.data.IterableDataset, str]:
        """The streamed training dataset (clip strides jittered up to `max_stride`), and a line saying how it
        reads and decodes (when `streams`)."""
        raise NotImplementedError(f"data.source {self.name} trains map-style")

    def probes_training_videos(self, data: DataConfig) -> bool:
        """Whether prepare_data.py read the training videos' headers (frames, fps, duration) ahead."""
        return True

    def hub_dataset(self, data: DataConfig) -> str | None:
        """The Hub dataset the videos come from, for the model card (None: local or unnamed)."""
        return None
