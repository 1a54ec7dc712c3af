"""Prepare a dataset folder: `<root>/{train,val,test}/<Class>/<video>`, labels.json, manifest.csv.

Everything is built in a hidden `.<root>.partial` folder beside the target and
renamed into place only when complete, so an interrupted run never leaves a
folder that looks prepared; a rerun on a prepared folder does nothing.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import tarfile
from dataclasses import asdict
from pathlib import Path

from tqdm.auto import tqdm

from ..core.config import DataConfig
from ..core.errors import UserError
from . import synthetic, user_videos
from .hf_source import dataset_videos, write_stream
from .manifest import MANIFEST, SOURCE_RECORD, VideoRecord, probe_video, write_labels, write_manifest
from .shards import describe_shards
from .user_videos import SPLITS, VIDEO_SUFFIXES

# UCF101 names: v_<Class>_g<group>_c<clip>; the group is one scene (actor, place)
UCF_NAME = re.compile(r"^v_(?P<label>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$")


def _source_record(config: DataConfig) -> dict:
    """What decides the folder's content: compared on a rerun."""
    record = {"source": config.source}
    if config.source == "hub":
        record.update(repo=config.hub_repo, filename=config.hub_filename, revision=config.hub_revision)
    elif config.source == "archive":
        record.update(archive=str(Path(config.archive).resolve()))
    elif config.source == "folder":
        record.update(videos=str(Path(config.videos).expanduser().resolve()), split_fractions=config.split_fractions,
                      group_pattern=config.group_pattern, split_seed=config.split_seed)
    elif config.source == "hf_dataset":
        hf = config.hf_dataset
        path = str(Path(hf.path).expanduser().resolve()) if Path(hf.path).expanduser().exists() else hf.path
        record.update(hf_dataset={**asdict(hf), "path": path}, split_fractions=config.split_fractions,
                      group_pattern=config.group_pattern, split_seed=config.split_seed)
    else:
        record.update(synthetic=asdict(config.synthetic))
    return record


def prepare(config: DataConfig, check: str = "sampled") -> Path:
    """Make `config.root` complete; return it. `check` ("sampled" or "full"): how much of each of the
    user's videos (source: folder) is decoded to check it."""
    if config.source == "shards":  # written by `prepare_data.py --shards`: checked, nothing written
        print(describe_shards(config.root))
        return config.root
    root = Path(config.root)
    record = _source_record(config)
    if (root / MANIFEST).is_file():
        previous = json.loads((root / SOURCE_RECORD).read_text()) if (root / SOURCE_RECORD).is_file() else None
        if previous is not None and previous != record:
            changed = sorted(k for k in {**previous, **record} if previous.get(k) != record.get(k))
            raise UserError(
                f"{root} was prepared with other data settings ({', '.join(changed)} differ): "
                f"delete {root} or set data.root to another folder"
            )
        print(f"{root} is already prepared ({MANIFEST} present): nothing to do")
        return root
    if root.exists() and any(root.iterdir()):
        raise UserError(
            f"{root} exists but holds no {MANIFEST}, so it was not made by prepare_data.py: "
            f"move it away or set data.root to an empty or new folder"
        )

    partial = root.parent / f".{root.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)  # left by an interrupted run of ours
    partial.mkdir(parents=True)

    multi_label = False
    if config.source in ("folder", "hf_dataset"):
        listed, stream = None, None
        if config.source == "hf_dataset":
            listed, stream = dataset_videos(config)
        # a streamed train split is probed as it streams (hf_source.py)
        records, multi_label = user_video_records(config, partial, full=check == "full", listed=listed,
                                                  unprobed=("train",) if stream else ())
        if stream:
            write_stream(stream, partial)
    elif config.source == "synthetic" and config.synthetic.multi_label:
        records, multi_label = generate_synthetic(config, partial), True
    else:
        if config.source == "synthetic":
            generate_synthetic(config, partial)
        else:
            archive = Path(config.archive) if config.source == "archive" else download_from_hub(config)
            extract_archive(archive, partial)
            _hoist_split_folders(partial, archive)
        records = scan_videos(partial)
    labels = write_labels(records, partial, multi_label)
    write_manifest(records, partial)
    (partial / SOURCE_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    if root.exists():
        root.rmdir()  # empty, checked above
    partial.rename(root)
    counts = {split: sum(r.split == split for r in records) for split in SPLITS}
    print(f"prepared {root}: {len(labels)} classes, " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return root


def user_video_records(config: DataConfig, out: Path, full: bool, listed: list[user_videos.Listed] | None = None,
                       unprobed: tuple[str, ...] = ()) -> tuple[list[VideoRecord], bool]:
    """The user's videos (`listed`, or data.videos') as records with absolute paths, checked and split, and
    whether the list is multi-label; rejected.csv and the split report (splits.csv) written into `out`. The
    videos of the splits `unprobed` are not read: 0 frames, fps and seconds."""
    listed = user_videos.list_videos(config) if listed is None else listed
    where = config.videos if config.source == "folder" else config.hf_dataset.path
    checked = user_videos.check_videos([v.path for v in listed if v.split not in unprobed], full)
    checked.update({v.path: ((0, 0.0, 0.0), "") for v in listed if v.split in unprobed})
    rejected = [(v, checked[v.path][1]) for v in listed if checked[v.path][0] is None]
    if rejected and config.on_bad_video == "error":
        video, reason = rejected[0]
        raise UserError(f"{len(rejected)} of {len(listed)} videos do not decode, first {video.path}: {reason} "
                        "(data.on_bad_video: skip leaves them out and lists them)")
    with open(out / user_videos.REJECTED, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "reason"])
        writer.writerows((str(v.path), v.label, reason) for v, reason in rejected)
    good = [v for v in listed if checked[v.path][0] is not None]
    if not good:
        raise UserError(f"none of the {len(listed)} videos in {where} decodes (reasons in "
                        f"{out / user_videos.REJECTED}): check the files")
    if good[0].split:  # splits given by the list: kept
        split_of, short = {v.path: v.split for v in good}, []
    else:
        split_of, short = user_videos.assign_splits(good, tuple(config.split_fractions), config.group_pattern,
                                                    config.split_seed)
    records = [VideoRecord(str(v.path), v.label, split_of[v.path], user_videos.group_of(v, config.group_pattern),
                           *checked[v.path][0]) for v in good]
    report = user_videos.write_split_report([(r.label, r.split) for r in records], out)
    print(f"{len(listed)} videos found in {where}; {len(rejected)} rejected"
          + (f" (listed with the reason in {Path(config.root) / user_videos.REJECTED})" if rejected else "")
          + "; videos per class and split (splits.csv):\n" + report)
    for message in short:
        print(f"note: {message} (add videos, or set data.split_fractions)")
    return records, listed[0].multi_label


def generate_synthetic(config: DataConfig, out: Path) -> list[VideoRecord]:
    """Render the synthetic set into `out`; its records (multi-label: the labels of each video, which
    its folder's name does not carry)."""
    specs = synthetic.plan(config.synthetic)
    records = []
    for spec in tqdm(specs, desc="generating videos", unit="video"):
        frames = synthetic.render(spec, config.synthetic)
        synthetic.write_video(frames, out / spec.relpath, config.synthetic.fps, config.synthetic.bits_per_pixel)
        records.append(VideoRecord(spec.relpath, spec.labels, spec.split, f"{spec.group:02d}",
                                   *probe_video(out / spec.relpath)))
    return records


def download_from_hub(config: DataConfig) -> Path:
    """The dataset archive from the Hub (or `HF_ENDPOINT`), through huggingface_hub's resumable cache."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

    try:
        return Path(
            hf_hub_download(
                repo_id=config.hub_repo,
                filename=config.hub_filename,
                revision=config.hub_revision,
                repo_type="dataset",
            )
        )
    except RepositoryNotFoundError:
        raise UserError(f"dataset repo {config.hub_repo} not found on the Hub: check data.hub_repo") from None
    except EntryNotFoundError:
        raise UserError(
            f"file {config.hub_filename} not found in dataset repo {config.hub_repo}: check data.hub_filename"
        ) from None
    except (HfHubHTTPError, OSError) as err:
        raise UserError(
            f"could not download {config.hub_filename} from {config.hub_repo} ({type(err).__name__}: {err}); "
            "check the network, or use data.source: archive with a local copy"
        ) from None


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


