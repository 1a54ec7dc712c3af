"""data.source hub and archive: UCF101's layout in a .tar(.gz), from the Hub (`data.hub_repo`, through
huggingface_hub's cache) or a local file (`data.archive`), extracted safely into the folder being prepared
and read back by its layout (`<split>/<Class>/<video>`, UCF101's names giving each video's group)."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ...core.config import DataConfig
from ...core.errors import UserError
from ...core.hub import hub_call
from ...core.preflight import dataset_archive
from ..manifest import VideoRecord, probe_video
from ..user_videos import SPLITS, VIDEO_SUFFIXES
from .base import Source

# UCF101 names: v_<Class>_g<group>_c<clip>; the group is one scene (actor, place)
UCF_NAME = re.compile(r"^v_(?P<label>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$")


def download_from_hub(config: DataConfig) -> Path:
    """The dataset archive from the Hub (or `HF_ENDPOINT`), through huggingface_hub's resumable cache; a
    failure as core/hub.py's one line."""
    from huggingface_hub import hf_hub_download

    def load() -> str:
        return hf_hub_download(repo_id=config.hub_repo, filename=config.hub_filename, revision=config.hub_revision,
                               repo_type="dataset")

    return Path(hub_call(load, dataset_archive(config)))


def extract_archive(archive: Path, out: Path) -> None:
    """Extract a .tar(.gz) into `out`, refusing members that would land outside it."""
    if not archive.is_file():
        raise UserError(f"archive {archive} not found: check data.archive")
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                # the "data" filter would strip the leading "/"; an archive that has one is not ours
                if member.name.startswith("/") or Path(member.name).is_absolute():
                    raise tarfile.AbsolutePathError(member)
            for member in tqdm(members, desc=f"extracting {archive.name}", unit="file"):
                # "data" refuses absolute paths, "..", links leaving `out`, devices
                tar.extract(member, out, filter="data")
    except tarfile.FilterError as err:
        raise UserError(f"refusing archive {archive}: {err} (an unsafe member); use a trusted archive") from None
    except (tarfile.TarError, EOFError, OSError) as err:
        raise UserError(f"cannot read archive {archive}: {err}; download it again") from None


def _hoist_split_folders(folder: Path, archive: Path) -> None:
    """Archives hold `<top>/{train,val,test}`: move the split folders up to `folder`."""
    if all((folder / s).is_dir() for s in SPLITS):
        return
    tops = [p for p in folder.iterdir() if p.is_dir()]
    if len(tops) == 1 and all((tops[0] / s).is_dir() for s in SPLITS):
        for entry in list(tops[0].iterdir()):
            entry.rename(folder / entry.name)
        tops[0].rmdir()
        return
    raise UserError(f"archive {archive} has no {'/'.join(SPLITS)} folders (at its top or one level down)")


def scan_videos(root: Path) -> list[VideoRecord]:
    paths = sorted(p for split in SPLITS for p in (root / split).glob("*/*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not paths:
        raise UserError(f"no videos found under {root}/{{train,val,test}}/<Class>/: check the dataset layout")
    records = []
    for path in tqdm(paths, desc="reading video headers", unit="video"):
        rel = path.relative_to(root)
        split, label = rel.parts[0], rel.parts[1]
        match = UCF_NAME.match(path.stem)
        frames, fps, duration = probe_video(path)
        records.append(VideoRecord(rel.as_posix(), label, split, match["group"] if match else "", frames, fps, duration))
    return records


class Archive(Source):
    """A local .tar(.gz) of UCF101's layout (`data.archive`)."""

    name = "archive"
    refuses = "a stream: the archive is extracted, and its videos read from the prepared folder"

    def check(self, data: DataConfig) -> None:
        if not data.archive:
            raise UserError("data.archive is empty: source 'archive' needs the path of a .tar.gz")
        super().check(data)

    def record(self, data: DataConfig) -> dict[str, Any]:
        return {"archive": str(Path(data.archive).resolve())}

    def archive(self, data: DataConfig) -> Path:
        return Path(data.archive)

    def prepare(self, data: DataConfig, out: Path, full: bool) -> tuple[list[VideoRecord], bool]:
        archive = self.archive(data)
        extract_archive(archive, out)
        _hoist_split_folders(out, archive)
        return scan_videos(out), False


class Hub(Archive):
    """The archive downloaded from a Hub dataset repo (`data.hub_repo`, `hub_filename`, `hub_revision`)."""

    name = "hub"

    def check(self, data: DataConfig) -> None:
        Source.check(self, data)  # the archive is downloaded: data.archive is not asked for

    def record(self, data: DataConfig) -> dict[str, Any]:
        return {"repo": data.hub_repo, "filename": data.hub_filename, "revision": data.hub_revision}

    def archive(self, data: DataConfig) -> Path:
        return download_from_hub(data)

    def hub_dataset(self, data: DataConfig) -> str | None:
        return data.hub_repo
