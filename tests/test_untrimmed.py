"""Untrimmed recordings: time-ranged annotations (lists with start/end, Label Studio's export, ELAN, Kinetics
lists) prepared as segments read in place, background drawn between them, splits by recording, and every
refusal in one line with nothing prepared."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import tiny_config_dict, write_config
from videos import write

import prepare_data
from video_classifier.data.datasets import ClipDataset, ViewDataset
from video_classifier.data.decoding import choose_decoder
from video_classifier.data.manifest import MANIFEST, load_prepared
from video_classifier.data.preprocessing import PreprocessSpec

FPS, WIDTH, HEIGHT, BITS = 25, 64, 48, 10  # 10 stripes of 6 px: a frame's index up to 1023, drawn into it


def write_indexed(path: Path, frames: int) -> Path:
    """A recording whose frame k shows k in binary: stripe b (6 px wide, full height) white where bit b is set.
    mpeg4 at a high rate: a stripe's mean stays far from the threshold."""
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = 4_000_000
        for k in range(frames):
            image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            for b in range(BITS):
                if k >> b & 1:
                    image[:, 2 + 6 * b: 2 + 6 * b + 6] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def read_indices(frames: torch.Tensor) -> list[int]:
    """(T, C, H, W) uint8 -> each frame's drawn index."""
    grey = frames.float().mean(dim=(1, 2))  # (T, W): column means
    return [sum(1 << b for b in range(BITS) if grey[t, 2 + 6 * b + 1: 2 + 6 * b + 5].mean() > 128)
            for t in range(len(grey))]


def config_for(tmp_path: Path, videos: Path, **data) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tiny_config_dict(tmp_path)
    config["data"].update(source="folder", videos=str(videos), root=str(tmp_path / "prepared"), **data)
    return write_config(tmp_path / "config.yaml", config)


def write_list(path: Path, rows: list[dict], columns: tuple[str, ...] = ("path", "label", "start", "end")) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def prepared(tmp_path: Path, videos: Path, **data):
    prepare_data.main(["--config", str(config_for(tmp_path, videos, **data))])
    return load_prepared(tmp_path / "prepared")


def one_error(tmp_path: Path, capsys, videos: Path, **data) -> str:
    with pytest.raises(SystemExit):
        prepare_data.main(["--config", str(config_for(tmp_path, videos, **data))])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, lines
    assert not (tmp_path / "prepared").exists()
    return lines[0]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """Six indexed recordings of 400 frames (16 s), named so that the default group pattern matches none."""
    folder = tmp_path_factory.mktemp("recordings")
    for i in range(6):
        write_indexed(folder / f"session{i}.avi", 400)
    return folder


# per recording: (start, end, label); Run and Jump never overlap
SEGMENTS = [(1.0, 3.0, "Jump"), (5.2, 7.9, "Run"), (9.0, 10.0, "Jump"), (12.5, 15.0, "Run")]


def segment_rows(folder: Path, count: int = 6) -> list[dict]:
    return [{"path": f"session{i}.avi", "label": label, "start": start, "end": end}
            for i in range(count) for start, end, label in SEGMENTS]


def test_a_segments_clips_only_ever_come_from_inside_its_range(recordings, tmp_path):
    """Training draws (random windows, jittered strides) and the evaluation views of every segment decode only
    frames shown inside [start, end): read from the pictures themselves, not from our index arithmetic."""
    listing = write_list(recordings / "segments.csv", segment_rows(recordings))
    label2id, records = prepared(tmp_path, listing)
    segments = [r for r in records if r.start > 0]
    assert len(segments) == len(records) == 6 * len(SEGMENTS)
    spec = PreprocessSpec(num_frames=4, sample_rate=3, resize_shortest_edge=HEIGHT, crop_size=(HEIGHT, WIDTH),
                          mean=(0.5,) * 3, std=(0.5,) * 3)
    decode = choose_decoder("pyav").decode
    root = tmp_path / "prepared"
    random.seed(0)
    training = ClipDataset(segments, root, label2id, spec, train=True, decoder=decode, max_stride=12)
    views = ViewDataset(segments, root, label2id, spec, num_clips=5, num_crops=1, decoder=decode)
    for i, record in enumerate(segments):
        # frame k is shown from k / 25 s: inside [start, end) are frames ceil(25 start) .. ceil(25 end) - 1
        inside = range(int(np.ceil(record.start * FPS - 1e-9)), int(np.ceil((record.start + record.duration) * FPS - 1e-9)))
        seen = [k for _ in range(5) for k in read_indices(training[i]["video"])]
        seen += read_indices(views[i]["views"].flatten(0, 0).reshape(-1, 3, HEIGHT, WIDTH))
        assert all(k in inside for k in seen), (record.start, record.duration, sorted(set(seen)))
        assert max(seen) - min(seen) >= 0.5 * len(inside)  # the clips spread over the segment, not one spot


def test_one_recording_never_in_two_splits_and_splits_csv_counts_recordings(recordings, tmp_path):
    listing = write_list(recordings / "segments.csv", segment_rows(recordings))
    _, records = prepared(tmp_path, listing, split_fractions=[0.5, 0.17, 0.33])
    splits: dict[str, set[str]] = {}
    for r in records:
        splits.setdefault(r.path, set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values()) and len(splits) == 6
    assert {r.group for r in records if r.path.endswith("session0.avi")} == {"session0.avi"}
    with open(tmp_path / "prepared" / "splits.csv") as f:
        table = {row["class"]: row for row in csv.DictReader(f)}
    by_split = {s: sum(1 for v in splits.values() if v == {s}) for s in ("train", "val", "test")}
    assert {s: int(table["(recordings)"][s]) for s in by_split} == by_split
    assert sum(int(table["Jump"][s]) for s in by_split) == 6 * 2


def test_background_is_drawn_away_from_every_annotation_margin(recordings, tmp_path):
    listing = write_list(recordings / "segments.csv", segment_rows(recordings))
    margin = 0.5
    _, records = prepared(tmp_path, listing, background="Background", background_margin=margin, background_min=1.5)
    background = [r for r in records if r.label == "Background"]
    # the uncovered stretches of at least 1.5 s once widened by 0.5 s: 0-0.5 no; 3.5-4.7 no; 8.4-8.5 no;
    # 10.5-12.0 yes (1.5 s); 15.5-16.0 no. One per recording: the median class count (2) rounded, capped
    assert len(background) == 6
    for r in background:
        for start, end, _ in SEGMENTS:
            assert r.start + r.duration <= start - margin + 1e-6 or r.start >= end + margin - 1e-6
        assert r.duration >= 1.5 - 1e-6
    groups = {r.path: r.split for r in records if r.label != "Background"}
    assert all(groups[r.path] == r.split for r in background)


def test_an_end_just_past_the_recording_is_clamped_and_counted(recordings, tmp_path, capsys):
    rows = segment_rows(recordings)
    rows[-1]["end"] = 16.3  # the recordings are 16 s long: 0.3 s past
    _, records = prepared(tmp_path, write_list(recordings / "late.csv", rows))
    assert "1 segment ends were past their recording's end" in capsys.readouterr().out
    last = [r for r in records if r.path.endswith("session5.avi") and r.label == "Run"][-1]
    assert last.start + last.duration == pytest.approx(16.0)


@pytest.mark.parametrize("change, message", [
    ({"end": 17.0}, "end 17 s is past the end of"),
    ({"start": 4.0, "end": 4.0}, "start 4 s is not before end 4 s"),
    ({"start": 2.0, "end": 6.0, "label": "Run"}, "overlaps"),
])
def test_a_bad_range_is_refused_in_one_line_naming_the_row(recordings, tmp_path, capsys, change, message):
    rows = segment_rows(recordings)
    rows[1].update(change)  # session0's second row: line 3 of the list
    line = one_error(tmp_path, capsys, write_list(recordings / "bad.csv", rows))
    assert message in line and "bad.csv line 3" in line


def test_a_multi_label_list_takes_overlapping_ranges(recordings, tmp_path):
    rows = [{"path": "session0.avi", "labels": "Run", "start": 1.0, "end": 5.0},
            {"path": "session0.avi", "labels": "Run|Jump", "start": 3.0, "end": 6.0},
            {"path": "session1.avi", "labels": "Jump", "start": 1.0, "end": 5.0}]
    _, records = prepared(tmp_path, write_list(recordings / "multi.csv", rows, ("path", "labels", "start", "end")),
                          split_fractions=[1.0, 0.0, 0.0])
    assert sorted((r.start, r.duration) for r in records) == [(1.0, 4.0), (1.0, 4.0), (3.0, 3.0)]


def test_a_recording_that_does_not_decode_is_rejected_once_with_all_its_segments(recordings, tmp_path):
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video" * 100)
    rows = segment_rows(recordings) + [{"path": str(broken), "label": label, "start": s, "end": e}
                                       for s, e, label in SEGMENTS]
    _, records = prepared(tmp_path, write_list(recordings / "with_broken.csv", rows))
    assert not any(r.path == str(broken) for r in records) and len(records) == 6 * len(SEGMENTS)
    with open(tmp_path / "prepared" / "rejected.csv") as f:
        rejected = list(csv.DictReader(f))
    assert [row["path"] for row in rejected] == [str(broken)] and rejected[0]["label"] == "Jump Run"


def test_an_old_whole_file_list_prepares_the_manifest_it_always_did(tmp_path):
    folder = tmp_path / "clips"
    for i in range(4):
        write(folder / f"v_A_g{i:02d}_c01.avi", n=20)
    listing = write_list(tmp_path / "list.csv", [{"path": str(folder / f"v_A_g{i:02d}_c01.avi"), "label": "A"}
                                                 for i in range(4)], ("path", "label"))
    prepared(tmp_path, listing)
    header = (tmp_path / "prepared" / MANIFEST).read_text().splitlines()[0]
    assert header == "path,label,split,group,frames,fps,duration"


def label_studio_export(rows: list[dict]) -> list[dict]:
    """A Label Studio JSON export of a video project with a TimelineLabels control, written from its documented
    structure: per task data.video (an upload URL with Label Studio's 8-hex prefix) and annotations[].result
    of type timelinelabels, value.ranges of 1-based frames, the last included."""
    tasks: dict[str, dict] = {}
    for row in rows:
        task = tasks.setdefault(row["path"], {
            "id": len(tasks) + 1, "data": {"video": f"/data/upload/7/0a1b2c3d-{row['path']}"},
            "annotations": [{"id": len(tasks) + 1, "was_cancelled": False, "result": []}]})
        # the frames shown inside [start, end): 0-based ceil(25 start) .. ceil(25 end) - 1, written 1-based
        first, last = int(np.ceil(row["start"] * FPS - 1e-9)) + 1, int(np.ceil(row["end"] * FPS - 1e-9))
        task["annotations"][0]["result"].append({
            "id": f"r{len(task['annotations'][0]['result'])}", "type": "timelinelabels", "from_name": "videoLabels",
            "to_name": "video", "value": {"ranges": [{"start": first, "end": last}], "timelinelabels": [row["label"]]}})
    return list(tasks.values())


def test_a_label_studio_export_prepares_the_segments_the_csv_gives(recordings, tmp_path, capsys):
    rows = segment_rows(recordings)
    _, from_csv = prepared(tmp_path / "csv", write_list(recordings / "segments.csv", rows))
    export = tmp_path / "project.json"
    export.write_text(json.dumps(label_studio_export(rows)))
    _, from_export = prepared(tmp_path / "ls", export, video_dir=str(recordings))
    assert "Label Studio frames read at each video's own frame rate" in capsys.readouterr().out
    # the same frames (a time between two frames' is, in the export, the frame shown next): frame k is shown
    # from k / 25 s, so the CSV's segment begins at frame ceil(25 start)
    key = lambda r: (Path(r.path).name, r.label, r.frames, r.split)  # noqa: E731
    first = sorted((*key(r), int(np.ceil(r.start * FPS - 1e-9))) for r in from_csv)
    assert sorted((*key(r), round(r.start * FPS)) for r in from_export) == first


def test_an_elan_folder_is_read_through_pympi(recordings, tmp_path):
    from pympi.Elan import Eaf

    eafs = tmp_path / "eaf"
    eafs.mkdir()
    for i in range(6):
        eaf = Eaf(author="test")
        eaf.add_linked_file(str(recordings / f"session{i}.avi"), relpath=f"../../{recordings.name}/session{i}.avi",
                            mimetype="video/x-msvideo")
        eaf.add_tier("behaviour")
        eaf.add_tier("notes")
        for start, end, label in SEGMENTS:
            eaf.add_annotation("behaviour", int(start * 1000), int(end * 1000), label)
        eaf.add_annotation("notes", 0, 500, "camera on")
        eaf.to_file(str(eafs / f"session{i}.eaf"))
    _, records = prepared(tmp_path, eafs, elan_tier="behaviour")
    assert sorted((Path(r.path).name, r.label, r.start, round(r.duration, 6)) for r in records) == sorted(
        (f"session{i}.avi", label, start, round(end - start, 6)) for i in range(6) for start, end, label in SEGMENTS)


def test_elan_without_a_tier_names_the_tiers(recordings, tmp_path, capsys):
    from pympi.Elan import Eaf

    eaf = Eaf(author="test")
    eaf.add_linked_file(str(recordings / "session0.avi"), mimetype="video/x-msvideo")
    eaf.add_tier("behaviour")
    eaf.add_annotation("behaviour", 1000, 3000, "Jump")
    eaf.to_file(str(tmp_path / "one.eaf"))
    line = one_error(tmp_path, capsys, tmp_path / "one.eaf")
    assert "2 tiers (it has default, behaviour): set data.elan_tier" in line


def test_a_kinetics_list_counts_missing_downloads(recordings, tmp_path, capsys):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for i in range(6):
        (downloads / f"yt{i:02d}xxxxxx.avi").symlink_to(recordings / f"session{i}.avi")
    rows = [{"label": label, "youtube_id": f"yt{i:02d}xxxxxx", "time_start": start, "time_end": end,
             "split": "train" if i < 4 else ("validate" if i == 4 else "test")}
            for i in range(8) for start, end, label in SEGMENTS[:2]]
    listing = write_list(tmp_path / "kinetics.csv", rows, ("label", "youtube_id", "time_start", "time_end", "split"))
    _, records = prepared(tmp_path, listing, video_dir=str(downloads))
    assert "2 videos of" in capsys.readouterr().out  # yt06, yt07 are not downloaded
    assert len(records) == 12 and {r.split for r in records} == {"train", "val", "test"}
    assert {r.group for r in records} == {f"yt{i:02d}xxxxxx" for i in range(6)}


def test_an_annotation_file_in_no_format_says_what_it_tried(tmp_path, capsys):
    bad = tmp_path / "export.json"
    bad.write_text(json.dumps([{"id": 1, "video": "a.mp4"}]))
    line = one_error(tmp_path, capsys, bad)
    assert "has no `data` key: not Label Studio's JSON export" in line and "JSON lines" in line


def test_the_model_card_counts_segments_and_recordings(recordings, tmp_path):
    from video_classifier.core.config import load_config
    from video_classifier.engine.model_card import model_card

    config_path = config_for(tmp_path, write_list(recordings / "segments.csv", segment_rows(recordings)),
                             split_fractions=[0.5, 0.17, 0.33])
    prepare_data.main(["--config", str(config_path)])
    _, records = load_prepared(tmp_path / "prepared")
    test = [r for r in records if r.split == "test"]
    metrics = {"test": {"videos": len(test), "top1": 1.0, "per_class": {}}}
    card = str(model_card(load_config(config_path), metrics, "videomae", 8, tmp_path / "run"))
    assert f"| test ({len(test)} segments of {len({r.path for r in test})} recordings) |" in card


def test_eval_timeline_writes_the_segmental_numbers_per_recording(recordings, tmp_path):
    """eval.py --timeline on a split of annotated recordings (a model trained 2 steps: the numbers are checked
    for their keys and range, the annotated side against the annotations' own arithmetic)."""
    import eval as eval_script
    import train as train_script

    listing = write_list(recordings / "segments.csv", segment_rows(recordings))
    config = config_for(tmp_path, listing, split_fractions=[0.5, 0.17, 0.33], background="Background",
                        background_min=1.5, background_margin=0.5)
    overrides = ["--set", "train.max_steps=2", "--set", "eval.num_clips=1", "--set", "eval.num_crops=1"]
    prepare_data.main(["--config", str(config)])
    train_script.main(["--config", str(config), *overrides])
    eval_script.main(["--config", str(config), "--timeline", *overrides])
    run = tmp_path / "run"
    metrics = json.loads((run / "eval_test_timeline.json").read_text())
    keys = {"frame_accuracy", "f1@0.10", "f1@0.25", "f1@0.50", "edit", "map@0.3", "map@0.5", "map@0.7",
            "false_alarms_per_hour"}
    assert keys <= set(metrics) and all(0 <= metrics[k] <= 1 for k in keys - {"false_alarms_per_hour"})
    _, records = load_prepared(tmp_path / "prepared")
    tested = {r.path for r in records if r.split == "test"}
    assert set(metrics["per_recording"]) == tested and metrics["recordings"] == len(tested)
    annotated = sum(end - start for start, end, _ in SEGMENTS)  # 16 s recordings, minus the actions
    for entry in metrics["per_recording"].values():
        assert entry["background_seconds"] == pytest.approx(16.0 - annotated, abs=2 / FPS)
    assert len(list(run.glob("timeline_test_*.png"))) == len(tested)
    assert metrics["actions"] == len(SEGMENTS) * len(tested) and 0 <= metrics["actions_found"] <= metrics["actions"]
    # the model card gains the numbers and the pictures, once however often eval.py --timeline runs
    eval_script.main(["--config", str(config), "--timeline", *overrides])
    card = (run / "README.md").read_text()
    assert card.count("## The timeline against annotations") == 1
    assert all(f"]({p.name})" in card for p in run.glob("timeline_test_*.png"))
