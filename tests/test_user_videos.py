"""data.source: folder — the user's own videos, checked, split by group, used in place and never changed."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import av
import pytest
from conftest import assert_metrics_add_up, tiny_config_dict, write_config
from videos import FORMATS, garble, garble_bytes, truncate, write

import prepare_data
import train as train_script
from video_classifier.data.manifest import load_prepared

CLASSES = ("Jump", "Run", "Swim", "Throw")


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


VIDEOS = 220


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """220 videos of 4 classes in every format, UCF101-style names (13 groups x 4 clips per class) and a
    few of other names in subfolders; 19 of them broken in different ways: 11 emptied, not videos,
    truncated or with their middle third garbled; and 8 of 160x120, 100 frames, whose headers still
    describe them whole: AVI/MJPEG and MPEG-4 cut to a third (FFmpeg's duration then says 1.3 s, the
    header's frame count 100), and MOV/H.264, AVI/MJPEG and MPEG-4 with 4 KB garbled in the middle.
    -> (folder, bad -> how)."""
    folder = tmp_path_factory.mktemp("my_videos")
    kinds = list(FORMATS)
    made = []
    for c, label in enumerate(CLASSES):
        for group in range(1, 14):
            for clip in range(1, 5):
                kind = kinds[(group + clip) % len(kinds)]
                made.append(write(folder / label / f"v_{label}_g{group:02d}_c{clip:02d}", kind, n=30,
                                  seed=c * 1000 + group * 10 + clip))
        made.append(write(folder / label / "phone" / "IMG_0001", "h264", n=30, seed=c))
    bad = {}
    for i, how in enumerate(["empty", "text", "truncated", "garbled"] * 3):
        if len(bad) == 11:
            break
        path = made[7 + 19 * i]
        if how == "empty":
            path.write_bytes(b"")
        elif how == "text":
            path.write_text("not a video\n")
        elif how == "truncated":
            truncate(path, 0.3)
        else:
            garble(path)
        bad[str(path)] = how
    damaged = [("mjpeg", "truncated", 0), ("mjpeg", "truncated", 1), ("mpeg4", "truncated", 0),
               ("mov", "garbled 4 KB", 0.5), ("mov", "garbled 4 KB", 0.35), ("mjpeg", "garbled 4 KB", 0.6),
               ("mjpeg", "garbled 4 KB", 0.45), ("mpeg4", "garbled 4 KB", 0.5)]
    for i, (kind, how, at) in enumerate(damaged):
        label = CLASSES[i % len(CLASSES)]
        path = write(folder / label / "camera" / f"clip{i}", kind, n=100, width=160, height=120, seed=i)
        bad[str(path)] = how
        truncate(path, 1 / 3) if how == "truncated" else garble_bytes(path, at)
    assert sum(1 for p in folder.rglob("*") if p.is_file()) == VIDEOS
    return folder, bad


def prepare_config(tmp_path: Path, videos: Path, **data) -> Path:
    config = tiny_config_dict(tmp_path)
    config["data"].update(source="folder", videos=str(videos), root=str(tmp_path / "prepared"), **data)
    return write_config(tmp_path / "config.yaml", config)


def test_a_folder_of_mixed_videos_is_checked_split_by_group_and_left_unchanged(user_folder, tmp_path, capsys):
    folder, bad = user_folder
    before = snapshot(folder)
    prepare_data.main(["--config", str(prepare_config(tmp_path, folder))])
    assert snapshot(folder) == before  # byte for byte, and nothing added
    root = tmp_path / "prepared"
    label2id, records = load_prepared(root)
    assert sorted(label2id) == list(CLASSES)
    with open(root / "rejected.csv", newline="") as f:
        rejected = {row["path"]: row["reason"] for row in csv.DictReader(f)}
    # every broken file rejected with a reason; what the check cannot see (a garbled middle that still
    # decodes at start, middle and end) may pass (--check full rejects it), and training copes with it
    assert set(rejected) <= set(bad) and all(rejected.values())
    assert {p for p, how in bad.items() if how in ("empty", "text", "truncated")} <= set(rejected)
    assert len(records) == VIDEOS - len(rejected)
    assert all(Path(r.path).is_absolute() and Path(r.path).is_relative_to(folder) for r in records)
    splits_of_group = defaultdict(set)
    for r in records:
        splits_of_group[r.label, r.group].add(r.split)
    assert all(len(s) == 1 for s in splits_of_group.values())  # no group in two splits
    assert {r.group for r in records if "IMG_0001" in r.path} == {"IMG_0001.mp4"}  # its own group
    counts = {s: sum(r.split == s for r in records) for s in ("train", "val", "test")}
    assert counts["train"] > 150 and counts["val"] >= 12 and counts["test"] >= 12  # 1-2 of 14 groups per class
    out = capsys.readouterr().out
    assert f"{VIDEOS} videos found in {folder}; {len(rejected)} rejected (listed with the reason in" in out
    report = list(csv.reader(open(root / "splits.csv")))
    assert report[0] == ["class", "train", "val", "test"] and len(report) == 5
    assert sum(int(n) for row in report[1:] for n in row[1:]) == len(records)

    # a second prepare with the same settings splits the same way (deterministic by split_seed)
    again = tmp_path / "again"
    again.mkdir()
    prepare_data.main(["--config", str(prepare_config(again, folder))])
    assert (again / "prepared" / "manifest.csv").read_text() == (root / "manifest.csv").read_text()


def decodable_frames(path: str) -> int:
    with av.open(path) as container:
        return sum(1 for _ in container.decode(video=0))


def test_full_check_rejects_every_damaged_video_and_the_manifest_counts_what_decodes(user_folder, tmp_path):
    """--check full decodes every frame: it rejects all 19 damaged videos, garbled middles included, and
    keeps every whole one; with either check the manifest's frame count of a whole video is the number of
    frames that decode from it (the default check passes some garbled middles, as said above)."""
    folder, bad = user_folder
    prepare_data.main(["--config", str(prepare_config(tmp_path, folder)), "--check", "full"])
    with open(tmp_path / "prepared" / "rejected.csv", newline="") as f:
        rejected = {row["path"]: row["reason"] for row in csv.DictReader(f)}
    assert set(rejected) == set(bad), {p: bad.get(p, rejected.get(p)) for p in set(rejected) ^ set(bad)}
    _, records = load_prepared(tmp_path / "prepared")
    for record in records:
        assert record.frames == decodable_frames(record.path), record
    sampled = tmp_path / "sampled"
    sampled.mkdir()
    prepare_data.main(["--config", str(prepare_config(sampled, folder))])
    _, records = load_prepared(sampled / "prepared")
    for record in records:
        if record.path not in bad:
            assert record.frames == decodable_frames(record.path), record


def test_a_list_keeps_its_splits_and_groups(user_folder, tmp_path):
    folder, bad = user_folder
    good = sorted(p for p in folder.rglob("v_*_c01.*") if str(p) not in bad)
    rows = [{"path": str(p.relative_to(folder.parent)), "label": p.parent.name, "split": ("train", "val", "test")[i % 3],
             "group": f"scene{i}"} for i, p in enumerate(good)]
    listing = folder.parent / "list.jsonl"
    listing.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows_csv = folder.parent / "list.csv"
    with open(rows_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "split", "group"])
        writer.writeheader()
        writer.writerows(rows)
    for i, source in enumerate((listing, rows_csv)):
        work = tmp_path / str(i)
        work.mkdir()
        prepare_data.main(["--config", str(prepare_config(work, source))])
        _, records = load_prepared(work / "prepared")
        assert [(Path(r.path).name, r.split, r.group) for r in records] == \
               [(Path(row["path"]).name, row["split"], row["group"]) for row in rows]


@pytest.mark.parametrize("content, message", [
    ('{"path": "a.mp4"}\n', "line 1: every row needs a path and a label"),
    ('{"path": "a.mp4", "label": "A", "split": "dev"}\n', "split 'dev' is not one of train, val, test"),
    ('{"path": "a.mp4", "label": "A", "split": "train"}\n{"path": "b.mp4", "label": "A"}\n',
     "some rows give a split and some do not"),
    ('{"path": "a.mp4", ', "line 1: not valid JSON"),
])
def test_a_bad_list_is_one_line(tmp_path, capsys, content, message):
    listing = tmp_path / "list.jsonl"
    listing.write_text(content)
    with pytest.raises(SystemExit):
        prepare_data.main(["--config", str(prepare_config(tmp_path, listing))])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "prepared").exists()


def test_on_bad_video_error_stops_before_anything_is_prepared(user_folder, tmp_path, capsys):
    folder, _ = user_folder
    with pytest.raises(SystemExit):
        prepare_data.main(["--config", str(prepare_config(tmp_path, folder, on_bad_video="error"))])
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert "videos do not decode, first" in line and "data.on_bad_video: skip" in line
    assert not (tmp_path / "prepared").exists()


def test_training_on_a_prepared_folder(user_folder, tmp_path, capsys):
    folder, _ = user_folder
    config = prepare_config(tmp_path, folder, split_fractions=[0.6, 0.2, 0.2])
    prepare_data.main(["--config", str(config)])
    # stride 10: a clip of 4 frames spans 1.6 s, longer than these 1.2 s videos: kept, and said
    train_script.main(["--config", str(config), "--set", "train.epochs=1", "--set", "eval.num_crops=1",
                       "--set", "data.sample_rate=10"])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["videos"] >= 30
    assert_metrics_add_up(metrics["test"])
    _, records = load_prepared(tmp_path / "prepared")
    train = sum(r.split == "train" for r in records)
    short = sum(r.split == "train" and r.duration < 1.6 for r in records)  # all but the 4 s camera clips kept
    assert short >= train - 2
    assert f"data: {short} of {train} training videos are shorter than one clip" in capsys.readouterr().out
