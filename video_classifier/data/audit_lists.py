"""audit.py's findings acted on when a folder is prepared: an exclusion list (data.exclude), a relabel list
(data.relabel), and duplicate clusters as groups (data.duplicate_groups), all CSVs in the shape of the
audit's issues.csv (`path,split,issue,score,details`: a user keeps the rows to act on).

A row names a video by its manifest `path`, as issues.csv wrote it; a relabel row gives its new label in a
`label` column, else the one in its details ("the probe suggests X"). A path that is not among the videos
being prepared is refused in one line (a list written for other data), before anything is written.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from pathlib import Path

from ..core.errors import UserError
from .manifest import VideoRecord

SUGGESTED = re.compile(r"the probe suggests (?P<label>.+?) \(p=")
CLUSTER = re.compile(r"^cluster (?P<number>\d+) \(")


def read_rows(path: str, setting: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV with a `path` column."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise UserError(f"{setting} {path} not found: give an audit's issues.csv, or a CSV in its shape")
    with open(source, newline="") as f:
        reader = csv.DictReader(f)
        if "path" not in (reader.fieldnames or []):
            raise UserError(f"{setting} {path} has no path column: keep issues.csv's header "
                            "(path,split,issue,score,details)")
        rows = [(number, row) for number, row in enumerate(reader, start=2) if (row.get("path") or "").strip()]
    return rows


def _known(records: list[VideoRecord], rows: list[tuple[int, dict[str, str]]], setting: str, path: str) -> None:
    paths = {r.path for r in records}
    for number, row in rows:
        if row["path"] not in paths:
            raise UserError(f"{setting} {path} line {number}: {row['path']} is not among the videos being prepared: "
                            "was the list written for this data (data.videos, data.source)?")


def new_label(row: dict[str, str], setting: str, path: str, number: int) -> str:
    given = (row.get("label") or "").strip()
    if given:
        return given
    found = SUGGESTED.search(row.get("details") or "")
    if found is None:
        raise UserError(f"{setting} {path} line {number}: no label column and no 'the probe suggests' in its "
                        "details: add a label column with the right class")
    return found["label"]


def apply_lists(records: list[VideoRecord], exclude: str | None, relabel: str | None) -> list[VideoRecord]:
    """`records` without data.exclude's videos and with data.relabel's new labels; every other record as it
    was. Says what it did in one line each."""
    if exclude:
        rows = read_rows(exclude, "data.exclude")
        _known(records, rows, "data.exclude", exclude)
        dropped = {row["path"] for _, row in rows}
        records = [r for r in records if r.path not in dropped]
        print(f"data.exclude: {len(dropped)} videos left out ({exclude})")
    if relabel:
        rows = read_rows(relabel, "data.relabel")
        _known(records, rows, "data.relabel", relabel)
        labels = {row["path"]: new_label(row, "data.relabel", relabel, n) for n, row in rows}
        records = [replace(r, label=labels[r.path]) if r.path in labels else r for r in records]
        print(f"data.relabel: {len(labels)} videos relabelled ({relabel})")
    return records


def duplicate_clusters(path: str) -> dict[str, str]:
    """path -> its duplicate cluster ("cluster N") of an audit's issues.csv (rows `duplicate` and `leak`)."""
    out = {}
    for number, row in read_rows(path, "data.duplicate_groups"):
        if row.get("issue") in ("duplicate", "leak"):
            found = CLUSTER.match(row.get("details") or "")
            if found is None:
                raise UserError(f"data.duplicate_groups {path} line {number}: its details do not start with "
                                "'cluster N (': give issues.csv as audit.py wrote it")
            out[row["path"]] = f"cluster {found['number']}"
    return out


def leak_warning(root: str, records: list[VideoRecord]) -> str | None:
    """One line where an audit of `root` (audit/summary.json) found leaks whose videos are still in its
    manifest in more than one split: the test score would count copies of training videos."""
    summary = Path(root) / "audit" / "summary.json"
    if not summary.is_file():
        return None
    leaked = set(json.loads(summary.read_text()).get("leaked_videos", []))
    still = [r for r in records if r.path in leaked]
    if len({r.split for r in still}) < 2:
        return None
    return (f"warning: {len(still)} videos of {root} are copies across splits (audit.py: {root}/audit/issues.csv, "
            "issue leak): the val/test scores count copies of training videos; prepare again with data.exclude or "
            "prepare_data.py --split-by-duplicates")
