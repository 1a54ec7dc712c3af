"""Prepare a dataset folder: `<root>/{train,val,test}/<Class>/<video>`, labels.json, manifest.csv.

Everything is built in a hidden `.<root>.partial` folder beside the target and
renamed into place only when complete, so an interrupted run never leaves a
folder that looks prepared; a rerun on a prepared folder does nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..core.config import DataConfig
from ..core.errors import UserError
from .audit_lists import apply_lists
from .manifest import MANIFEST, SOURCE_RECORD, write_labels, write_manifest
from .sources import source_of
from .user_videos import SPLITS


def prepare(config: DataConfig, check: str = "sampled") -> Path:
    """Make `config.root` complete; return it. `check` ("sampled" or "full"): how much of each of the
    user's videos (source: folder) is decoded to check it."""
    source = source_of(config)
    in_place = source.in_place(config)  # a source read where it is (shards): checked, nothing written
    if in_place is not None:
        print(in_place)
        return config.root
    root = Path(config.root)
    record = {"source": source.name, **source.record(config),  # what decides the folder's content
              **{k: str(Path(v).expanduser().resolve()) for k in ("exclude", "relabel", "duplicate_groups")
                 if (v := getattr(config, k))}}
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

    records, multi_label = source.prepare(config, partial, full=check == "full")
    records = apply_lists(records, config.exclude, config.relabel)  # audit.py's findings, where the user acts
    labels = write_labels(records, partial, multi_label)
    write_manifest(records, partial)
    (partial / SOURCE_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    if root.exists():
        root.rmdir()  # empty, checked above
    partial.rename(root)
    counts = {split: sum(r.split == split for r in records) for split in SPLITS}
    print(f"prepared {root}: {len(labels)} classes, " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return root


