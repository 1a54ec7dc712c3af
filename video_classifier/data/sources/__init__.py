"""The data sources behind one door: each value of `data.source` is one module here, a `Source` (base.py:
what it records of its settings, how it prepares a folder, whether and how training streams it, what it
refuses), and `SOURCES` names them. prepare.py and datasets.py ask `source_of(data)`; nothing else asks
which source a run reads. A new source is one new module and one line in SOURCES."""

from __future__ import annotations

from ...core.config import DataConfig
from .archive import Archive, Hub
from .base import Source
from .folder import Folder
from .hf_dataset import HfDataset
from .shards import Shards
from .synthetic import Synthetic

SOURCES: dict[str, Source] = {
    "hub": Hub(),
    "archive": Archive(),
    "synthetic": Synthetic(),
    "folder": Folder(),
    "shards": Shards(),
    "hf_dataset": HfDataset(),
}


def source_of(data: DataConfig) -> Source:
    """The source `data.source` names (config.py has checked the name), once it has checked its settings."""
    source = SOURCES[data.source]
    source.check(data)
    return source
