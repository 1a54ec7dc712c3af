"""data.source: hf_dataset — a dataset the `datasets` library reads (a Hub repo id or a local folder).

`prepare_data.py` lists its rows through `datasets`: each row's video (the file `datasets` names: its cache
of a Hub dataset's files, the local dataset's own, or with `streaming: true` the file's `hf://` URL at the
commit listed), its label (a ClassLabel's name, a string, or a list of strings: multi-label) and group. The
videos are never copied.

With `data.hf_dataset.streaming: true` nothing is downloaded before training:

- prepare_data.py streams the rows with decoding off (`IterableDataset.decode(False)`: the metadata, not
  the videos), pins the dataset's commit in `stream.json`, and probes only the val and test videos, by
  byte ranges; the training videos' frames are read when they stream;
- training (`HfStreamClipDataset`) streams the train split through `datasets` again, at that commit: each
  epoch `IterableDataset.shuffle` (seed, a buffer of `data.shuffle_buffer` rows, `set_epoch`), then
  `datasets.distributed.split_dataset_by_node` with one node per (process, DataLoader worker), so that the
  processes and their workers read disjoint parts that together are the split once (by shards where their
  number divides by the nodes', else every node keeps one row in `nodes`). Each video is read whole (one
  request), decoded from memory, one random clip of it. Resume replays the stream, as for shards;
- evaluation reads the val and test videos map-style, by byte ranges of the same URLs, so their clips and
  views are exactly a folder's.
"""

from __future__ import annotations

import bisect
import json
import random
from pathlib import Path
from typing import Any, Callable, Iterator

import fsspec
import torch
from tqdm.auto import tqdm

from ..core.config import DataConfig, HfDatasetConfig
from ..core.errors import DecodeError, UserError, first_line
from ..core.hub import Wanted, hub_call
from ..core.task import SingleLabel, Task
from . import user_videos
from .clips import DecodeFailures
from .decoding import Decoder, probe_header
from .manifest import VideoRecord
from .preprocessing import PreprocessSpec
from .storage import ARROW_ROW, InMemoryVideo, arrow_row, arrow_table, is_url
from .streaming import ClipStream

STREAM = "stream.json"  # in data.root: the streamed dataset at its pinned commit


def datasets_library() -> Any:
    """The `datasets` library, told the truth about torchcodec: it imports torchcodec to encode any Video
    column once torchcodec is installed, and a torchcodec that does not import (built for another torch
    release than the one installed, as the newest torchcodec is for torch 2.6) would stop every video
    dataset. This package reads the videos itself (Video(decode=False)), so datasets is told it has none."""
    try:
        import datasets
    except ImportError:
        raise UserError("data.source hf_dataset reads through the `datasets` library: pip install datasets") from None
    if datasets.config.TORCHCODEC_AVAILABLE:
        try:
            import torchcodec.decoders  # noqa: F401
        except (ImportError, OSError, RuntimeError):
            datasets.config.TORCHCODEC_AVAILABLE = False
    return datasets


def _as_wanted(hf: HfDatasetConfig) -> Wanted:
    """The dataset as core/hub.py's lines name it."""
    return Wanted("dataset", hf.path, "data.hf_dataset.path", "data.hf_dataset.path: FOLDER, a local copy",
                  revision_setting="data.hf_dataset.revision")


def load(hf: HfDatasetConfig, streaming: bool, revision: str | None = None) -> Any:
    """`datasets.load_dataset` of `hf` (every split), at `revision` (default hf.revision); one line naming a
    dataset that is not found or will not load."""
    datasets = datasets_library()
    local = Path(hf.path).expanduser()
    try:
        if local.exists():
            return datasets.load_dataset(str(local), hf.name, revision=revision or hf.revision, streaming=streaming)
        return hub_call(lambda: datasets.load_dataset(hf.path, hf.name, revision=revision or hf.revision,
                                                      streaming=streaming), _as_wanted(hf))
    except FileNotFoundError as err:
        raise UserError(f"data.hf_dataset.path {hf.path}: dataset not found ({err}); give a Hub dataset id or a "
                        "local folder") from None
    except ValueError as err:  # e.g. an unknown configuration name
        raise UserError(f"data.hf_dataset {hf.path}: {err}") from None
    except ConnectionError as err:  # the Hub unreachable, or HF_HUB_OFFLINE=1 for a dataset not in the cache
        raise UserError(f"data.hf_dataset.path {hf.path}: {err}; check the network"
                        + (" (a streamed dataset is read from the Hub each run: unset HF_HUB_OFFLINE)"
                           if streaming else "")) from None


class Columns:
    """How one split's rows give a video, a label and a group (data.hf_dataset's columns)."""

    def __init__(self, hf: HfDatasetConfig, split: Any, theirs: str):
        datasets = datasets_library()
        self.hf, self.theirs = hf, theirs
        features = split.features or {}  # a stream may not know its features before it is read
        columns = list(split.column_names or features)
        for key, column in (("video_column", hf.video_column), ("label_column", hf.label_column),
                            ("group_column", hf.group_column)):
            if columns and column is not None and column.split(".")[0] not in columns:
                raise UserError(f"data.hf_dataset.{key}: {hf.path} (split {theirs}) has no column {column!r}; its "
                                f"columns are {', '.join(columns)}")
        label_feature = _feature(features, hf.label_column)
        self.multi = (isinstance(label_feature, (datasets.Sequence, datasets.List, list))
                      if label_feature is not None else None)  # None: from the first row's value
        self.names = getattr(getattr(label_feature, "feature", label_feature), "names", None)  # a ClassLabel's

    def _get(self, row: dict[str, Any], column: str, number: int) -> Any:
        """The row's `column`; "json.label" is the field label of the column json (a WebDataset's metadata)."""
        value: Any = row
        for part in column.split("."):
            if not isinstance(value, dict) or part not in value:
                raise UserError(f"data.hf_dataset {self.hf.path} split {self.theirs} row {number} has no column "
                                f"{column!r}; its columns are {', '.join(_names(row))}")
            value = value[part]
        return value

    def path(self, row: dict[str, Any], number: int, locate: Callable[[int], tuple[str, int]] | None = None) -> str:
        """The row's video: a local file or a URL (hf://, http(s)://) as `datasets` names it, or, for a video
        stored as bytes (Parquet, WebDataset), its row in `datasets`' Arrow cache (`locate`: row -> (file, row
        in it); None when streaming, which keeps no such file)."""
        video = self._get(row, self.hf.video_column, number)
        path = video.get("path") if isinstance(video, dict) else video
        where = f"data.hf_dataset {self.hf.path} split {self.theirs} row {number}"
        if isinstance(video, bytes) or (isinstance(video, dict) and video.get("bytes")):
            path = None if isinstance(video, bytes) else path
            if locate is None:
                raise UserError(f"{where}: its video is bytes inside the dataset's files, which a stream does not "
                                "keep: set data.hf_dataset.streaming: false (datasets keeps the files in its cache, "
                                "and each video is read from there)")
            return arrow_row(*locate(number), self.hf.video_column, path or row.get("__key__") or f"row-{number}")
        if not isinstance(path, str) or not (is_url(path) or (Path(path).is_absolute() and Path(path).is_file())):
            raise UserError(f"{where}: its video is neither a file, a URL nor bytes (it holds {str(video)[:80]!r})")
        return path

    def label(self, row: dict[str, Any], number: int) -> str:
        """The row's label, or (multi-label) its labels joined as in a manifest."""
        value = self._get(row, self.hf.label_column, number)
        if self.multi is None:
            self.multi = isinstance(value, (list, tuple))
        if self.names is not None:  # ClassLabel ids -> names
            value = [self.names[v] for v in value] if self.multi else self.names[value]
        return user_videos._row_labels(list(value), Path(self.hf.path), number) if self.multi else str(value).strip()

    def group(self, row: dict[str, Any], number: int) -> str:
        return str(self._get(row, self.hf.group_column, number)) if self.hf.group_column else ""


def _feature(features: Any, column: str) -> Any:
    """The feature of a column, or of a field inside one ("json.label"); None where not known."""
    for part in column.split("."):
        features = features.get(part) if hasattr(features, "get") else None
    return features


def _names(row: dict[str, Any], prefix: str = "") -> list[str]:
    """A row's columns, and the fields of its dict columns as column.field."""
    return [name for key, value in row.items()
            for name in ([f"{prefix}{key}"] + (_names(value, f"{prefix}{key}.") if isinstance(value, dict)
                                               and "bytes" not in value else []))]


def _wanted(hf: HfDatasetConfig, loaded: Any) -> dict[str, str]:
    """our split -> the dataset's, checked against the splits it has."""
    wanted = hf.splits or {name: name for name in loaded}  # pooled: every split of the dataset, split by us
    missing = sorted(set(wanted.values()) - set(loaded))
    if missing:
        raise UserError(f"data.hf_dataset.splits names {', '.join(missing)}, which {hf.path} lacks: its splits are "
                        f"{', '.join(loaded)}")
    return wanted


def dataset_videos(config: DataConfig) -> tuple[list[user_videos.Listed], dict[str, Any] | None]:
    """The rows of `data.hf_dataset` as the user's videos, each with the split it maps to
    (data.hf_dataset.splits) and its group; and, when streaming, what `stream.json` keeps (else None)."""
    hf = config.hf_dataset
    datasets = datasets_library()
    loaded = load(hf, hf.streaming)
    wanted = _wanted(hf, loaded)
    listed = []
    for ours, theirs in wanted.items():
        split = loaded[theirs]
        columns = Columns(hf, split, theirs)
        locate = None
        if hf.streaming:
            split = split.decode(False)  # rows of paths: the videos are not read
        else:
            locate = _arrow_locator(split, hf, theirs)
            if isinstance(split.features[hf.video_column], datasets.Video):  # the file or bytes, not a decoder
                split = split.cast_column(hf.video_column, datasets.Video(decode=False))
        rows = tqdm(split, desc=f"listing {hf.path} {theirs}", unit="row", disable=not hf.streaming)
        for number, row in enumerate(rows):
            path = columns.path(row, number, locate)
            listed.append(user_videos.Listed(path if is_url(path) or ARROW_ROW.match(path) else Path(path),
                                             columns.label(row, number),
                                             ours if hf.splits else "", columns.group(row, number),
                                             bool(columns.multi)))
    if not listed:
        raise UserError(f"data.hf_dataset {hf.path} has no rows in the splits {', '.join(wanted.values())}")
    if not hf.streaming:
        return listed, None
    local = Path(hf.path).expanduser()
    stream = {**{k: getattr(hf, k) for k in ("name", "video_column", "label_column", "group_column", "splits")},
              "path": str(local.resolve()) if local.exists() else hf.path,
              "revision": None if local.exists() else _commit(hf)}
    return listed, stream


def _arrow_locator(split: Any, hf: HfDatasetConfig, theirs: str) -> Callable[[int], tuple[str, int]]:
    """row of a loaded split -> (its Arrow file in `datasets`' cache, its row there)."""
    files = [f["filename"] for f in split.cache_files]
    starts, total = [], 0
    for file in files:
        starts.append(total)
        total += arrow_table(file).num_rows
    aligned = total == len(split) and getattr(split, "_indices", None) is None

    def locate(number: int) -> tuple[str, int]:
        if not aligned:  # said only for a dataset whose videos are bytes: files need no locating
            raise UserError(f"data.hf_dataset {hf.path} split {theirs}: its rows are not those of its cache files "
                            f"({', '.join(files) or 'none: held in memory'}); videos stored as bytes are read "
                            "from those files")
        at = bisect.bisect_right(starts, number) - 1
        return files[at], number - starts[at]

    return locate


def _commit(hf: HfDatasetConfig) -> str:
    """The commit of the Hub dataset's revision (training streams the files listed, not a newer push)."""
    from huggingface_hub import HfApi

    return hub_call(lambda: HfApi().dataset_info(hf.path, revision=hf.revision).sha, _as_wanted(hf))


def write_stream(stream: dict[str, Any], out: Path) -> None:
    (out / STREAM).write_text(json.dumps(stream, indent=1) + "\n")


def read_stream(root: str | Path) -> HfDatasetConfig:
    """The streamed dataset that prepare_data.py listed into `root`, at its pinned commit."""
    where = Path(root) / STREAM
    if not where.is_file():
        raise UserError(f"{where} is missing: data.hf_dataset.streaming needs a folder prepared with it; run "
                        "`python prepare_data.py --config <your config>` (into a new data.root)")
    return HfDatasetConfig(**json.loads(where.read_text()), streaming=True)


def read_video(path: str) -> InMemoryVideo:
    """A streamed row's video, read whole (one request); a read that fails is a DecodeError."""
    try:
        with fsspec.open(path, "rb") as f:
            return InMemoryVideo(path, f.read())
    except OSError as err:
        raise DecodeError(f"could not read {path}: {first_line(err)}") from err


class HfStreamClipDataset(ClipStream):
    """The train split of data.hf_dataset streamed through `datasets` (the module's docstring), at the commit
    in `root`'s stream.json; items as ShardClipDataset's."""

    def __init__(self, root: str | Path, records: list[VideoRecord], label2id: dict[str, int], spec: PreprocessSpec,
                 train: bool, decoder: Decoder, shuffle_buffer: int = 100, seed: int | None = None,
                 failures: DecodeFailures | None = None, task: Task = SingleLabel(), split: str = "train",
                 max_stride: float | None = None):
        super().__init__(label2id, spec, train, decoder, shuffle_buffer, seed, failures, task, max_stride)
        self.hf = read_stream(root)
        self.theirs = self.hf.splits[split]
        streamed = load(self.hf, streaming=True, revision=self.hf.revision)[self.theirs]
        self.columns = Columns(self.hf, streamed, self.theirs)
        self.stream = streamed.decode(False)
        self.row = {r.path: i for i, r in enumerate(records)}
        self.videos = len(records)
        self.split = split

    def describe(self) -> str:
        revision = f"@{self.hf.revision[:12]}" if self.hf.revision else ""
        return (f"HfStreamClipDataset streaming {self.hf.path}{revision} split {self.theirs} through datasets "
                f"({self.stream.num_shards} shards; split_dataset_by_node per process and DataLoader worker; "
                f"shuffle buffer {self.shuffle_buffer} rows)")

    def rows(self, epoch: int, node: int, nodes: int) -> Iterator[dict[str, Any]]:
        """The rows node `node` of `nodes` reads in `epoch`."""
        from datasets.distributed import split_dataset_by_node

        stream = self.stream
        if self.shuffle_buffer:  # the same seed in every node: one order, which the nodes share out
            stream = stream.shuffle(seed=self.seed, buffer_size=self.shuffle_buffer)
        stream = split_dataset_by_node(stream, rank=node, world_size=nodes)
        stream.set_epoch(epoch)  # on the node's dataset, which is what iterates (the split makes a new one)
        # iter() reads the node's part as it is: iterating the stream itself inside a DataLoader worker would
        # split it again, by shards only (a videofolder is one shard: every worker but one would stop)
        for batch in stream.iter(batch_size=1):
            yield {column: values[0] for column, values in batch.items()}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        epoch = self._next_epoch()
        node, nodes = self.rank * workers + worker, self.processes * workers
        rng = random.Random(hash((self.seed, epoch, node)))
        for number, row in enumerate(self.rows(epoch, node, nodes)):
            path = self.columns.path(row, number)
            if path not in self.row:  # a row that prepare_data.py left out (a video that did not decode)
                continue
            meta = {"label": self.columns.label(row, number), "split": self.split,
                    "group": self.columns.group(row, number)}
            try:
                video = read_video(path)
                meta["frames"], meta["fps"], meta["duration"] = probe_header(video)
            except DecodeError as err:
                self._failed(VideoRecord(path, meta["label"], self.split, meta["group"], 0, 0.0, 0.0), err)
                continue
            yield from self._items(path, meta, video, rng)
