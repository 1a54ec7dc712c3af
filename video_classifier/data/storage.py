"""Where a video's bytes are: a local file, a member of a tar shard, or a remote file, read through fsspec.

A prepared folder (`data.root`) may be a local folder or a URL (`file://`, `http(s)://`, `hf://`,
`s3://` where s3fs is installed): its manifest's paths are then resolved against it. A path is one of

- `<shard>.tar:<offset>:<size>:<member>`: the member of a shard written by `prepare_data.py --shards`
  (shards.py), read as one byte range of `size` bytes at `offset` and decoded in memory;
- `<file>.arrow:<row>:<column>:<name>`: a video stored as bytes in a dataset `datasets` loaded (Parquet,
  WebDataset): row `row` of that Arrow file in `datasets`' cache, memory-mapped, its `column`'s bytes;
  `name` is the file name the row gives (for groups and messages);
- a URL (a list of the user's videos may name http(s) files): read by byte ranges as FFmpeg seeks,
  never downloaded whole;
- anything else: a file relative to the root (or absolute).

Both decoders take what `video_source` returns: a `Path`, or an object that opens as a binary file.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import fsspec

from ..core.errors import UserError

# <shard>.tar:<offset of the member's data>:<its size>:<member name>
SHARD_MEMBER = re.compile(r"^(?P<shard>[^/:]+\.tar):(?P<offset>\d+):(?P<size>\d+):(?P<name>.+)$")
# <Arrow file of datasets' cache>:<row>:<column>:<the row's file name>
ARROW_ROW = re.compile(r"^(?P<file>/.+?\.arrow):(?P<row>\d+):(?P<column>[^:/]+):(?P<name>.*)$")
URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# fsspec reads a remote file in blocks of this many bytes as FFmpeg seeks: a clip of a long video reads a few
# blocks around its frames (and the container's index), not the file; fsspec's default (5 MiB) would read
# most short videos whole
REMOTE_BLOCK = 256 * 1024


def is_url(path: str | Path) -> bool:
    return isinstance(path, str) and bool(URL.match(path))


def join(root: str | Path, name: str) -> str | Path:
    """`name` inside `root`, a local folder or a URL."""
    return f"{str(root).rstrip('/')}/{name}" if is_url(str(root)) else Path(root) / name


def _fs_options(url: str, streaming: bool = False) -> dict[str, Any]:
    """fsspec's options for `url`: HTTP(S) files by byte ranges of REMOTE_BLOCK bytes, or (`streaming`)
    one pass without seeking."""
    if url.startswith(("http://", "https://")):
        return {"block_size": 0 if streaming else REMOTE_BLOCK}
    return {}


@dataclass(frozen=True)
class ShardMember:
    """A video inside a tar shard: one byte range, read when opened, decoded from memory."""

    shard: str  # the shard's path or URL
    offset: int
    size: int
    name: str

    def open(self) -> BinaryIO:
        return io.BytesIO(read_range(self.shard, self.offset, self.size))

    def __str__(self) -> str:
        return f"{self.shard}:{self.name}"


@dataclass(frozen=True)
class InMemoryVideo:
    """A video's bytes in memory (a shard member read, a streamed sample), with the name errors give."""

    name: str
    data: bytes

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ArrowRow:
    """A video stored as bytes in a row of an Arrow file (`datasets`' cache), memory-mapped: opening it reads
    that row's bytes, not the file."""

    file: str
    row: int
    column: str
    name: str

    def open(self) -> BinaryIO:
        import pyarrow as pa

        value = arrow_table(self.file).column(self.column)[self.row]
        data = value["bytes"].as_py() if pa.types.is_struct(value.type) else value.as_py()  # a Video, or binary
        if not data:
            raise OSError(f"{self}: the row holds no bytes")
        return io.BytesIO(data)

    def __str__(self) -> str:
        return f"{self.file}:{self.row} ({self.name})"


@lru_cache(maxsize=32)
def arrow_table(file: str) -> Any:
    """An Arrow file of `datasets`' cache (IPC stream format), memory-mapped once per process."""
    import pyarrow as pa

    return pa.ipc.open_stream(pa.memory_map(file)).read_all()


def arrow_row(file: str, row: int, column: str, name: str) -> str:
    """The manifest path of a video stored as bytes in row `row` of an Arrow file."""
    return f"{file}:{row}:{column}:{name}"


@dataclass(frozen=True)
class RemoteVideo:
    """A video at a URL, read by byte ranges as FFmpeg seeks (fsspec's file object)."""

    url: str

    def open(self) -> BinaryIO:
        try:
            return fsspec.open(self.url, "rb", **_fs_options(self.url)).open()
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.url} not found (HTTP 404 or no such file)") from None

    def __str__(self) -> str:
        return self.url


def video_source(root: str | Path, path: str) -> Path | ShardMember | ArrowRow | RemoteVideo:
    """What the decoders read for a manifest `path` under `root` (see the module's docstring)."""
    member = SHARD_MEMBER.match(path)
    if member:
        return ShardMember(str(join(root, member["shard"])), int(member["offset"]), int(member["size"]),
                           member["name"])
    row = ARROW_ROW.match(path)
    if row:
        return ArrowRow(row["file"], int(row["row"]), row["column"], row["name"])
    if is_url(path):
        return RemoteVideo(path)
    if is_url(str(root)):
        return RemoteVideo(str(join(root, path)))
    return Path(root) / path


def read_range(url: str, offset: int, size: int) -> bytes:
    """`size` bytes of `url` from `offset` (one ranged request over HTTP)."""
    fs, where = fsspec.core.url_to_fs(url)
    data = fs.cat_file(where, start=offset, end=offset + size)
    if len(data) != size:
        raise OSError(f"{url}: {len(data)} bytes at {offset}, expected {size} (the file changed since it was "
                      "written?)")
    return data


def read_bytes(root: str | Path, name: str) -> bytes:
    """The file `name` in `root` (a folder or URL), whole; a missing one is a one-line UserError naming it."""
    where = str(join(root, name))
    try:
        with fsspec.open(where, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise UserError(f"{where} not found (HTTP 404 or no such file): check data.root, or run "
                        "`python prepare_data.py --config <your config>` first") from None
    except (OSError, ValueError) as err:  # aiohttp's errors reach here as OSError subclasses
        raise UserError(f"cannot read {where}: {err}; check data.root and the network") from None


def exists(root: str | Path, name: str) -> bool:
    where = str(join(root, name))
    if not is_url(where):
        return Path(where).is_file()
    fs, path = fsspec.core.url_to_fs(where)
    try:
        return fs.exists(path)
    except OSError:
        return False


def open_stream(url: str) -> BinaryIO:
    """`url` opened for one pass from start to end (a shard streamed)."""
    try:
        return fsspec.open(url, "rb", **_fs_options(url, streaming=True)).open()
    except FileNotFoundError:
        raise UserError(f"shard {url} not found (HTTP 404 or no such file): check data.root, or write the "
                        "shards again with prepare_data.py --shards") from None
