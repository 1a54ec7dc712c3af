"""audit.py: duplicates that survive re-encoding, rescaling, cropping and trimming, and none between different
videos; the out-of-sample rule of the label probe; blank and frozen videos; the shapes of issues.csv and
summary.json; prepare_data.py's exclusion and relabel lists."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import run_script, tiny_config_dict, write_config

from video_classifier.data.decoding import decode_pyav
from video_classifier.data.fingerprints import fingerprint
from video_classifier.data.manifest import VideoRecord, load_prepared, probe_video
from video_classifier.engine import audit as audit_module
from video_classifier.engine.duplicates import clusters, find_matches
from video_classifier.engine.label_issues import out_of_sample


def frames_of(path: Path) -> np.ndarray:
    """Every frame of a video, (T, H, W, 3) uint8."""
    frames, _, _ = probe_video(path)
    return decode_pyav(path, list(range(frames))).permute(0, 2, 3, 1).numpy()


def write_h264(frames: np.ndarray, path: Path, fps: int = 25) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "30"}
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:stream.height, :stream.width]),
                                                 format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    return path


def altered_copy(frames: np.ndarray, out: Path) -> Path:
    """Started 0.3 s late, cropped by 8% at the bottom right, rescaled 1.5x, re-encoded as H.264."""
    import torch

    t, h, w = frames.shape[:3]
    cropped = frames[8:, round(h * 0.08):, round(w * 0.08):]
    scaled = torch.nn.functional.interpolate(torch.from_numpy(cropped).permute(0, 3, 1, 2).float(),
                                             scale_factor=1.5, mode="bilinear")
    return write_h264(scaled.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy(), out)


def record_of(path: Path, split: str = "train") -> VideoRecord:
    frames, fps, duration = probe_video(path)
    return VideoRecord(str(path), "x", split, str(path), frames, fps, duration)


def test_an_altered_copy_is_found_and_another_video_of_its_class_is_not(tiny_workspace, tmp_path):
    _, records = load_prepared(tiny_workspace / "data")
    original = next(r for r in records if r.split == "train")
    sibling = next(r for r in records if r.label == original.label and r.path != original.path)
    source = tiny_workspace / "data" / original.path
    copy = altered_copy(frames_of(source), tmp_path / "copy.mp4")
    assert probe_video(copy)[0] == probe_video(source)[0] - 8  # the copy really is trimmed
    paths = [source, copy, tiny_workspace / "data" / sibling.path]
    prints = [fingerprint(record_of(p), "/", decode_pyav) for p in paths]
    matches = find_matches(prints)
    assert [(m.a, m.b) for m in matches] == [(0, 1)], matches
    assert matches[0].shift_s == pytest.approx(-0.3, abs=0.051)  # it found the trim, not a chance alignment
    assert clusters(matches, 3) == [[0, 1]]


def test_no_two_videos_of_the_tiny_set_match(tiny_workspace):
    _, records = load_prepared(tiny_workspace / "data")
    prints = [fingerprint(r, tiny_workspace / "data", decode_pyav) for r in records]
    assert find_matches(prints) == []  # each video's texture is drawn anew: none is a copy of another


def test_each_video_is_scored_by_a_probe_that_never_saw_it_nor_its_group():
    """Features that name each video (one-hot of its index) and random labels: a probe that had seen a video
    would give its label a high probability; held out, it can only guess (1/6 in expectation)."""
    rng = np.random.default_rng(0)
    n, classes = 240, 6
    labels = rng.integers(0, classes, n)
    groups = [f"g{i // 2}" for i in range(n)]  # two videos per group
    features = np.eye(n) * 10
    probs, _, folds = out_of_sample(features, labels, groups, classes)
    own = probs[np.arange(n), labels]
    assert own.mean() < 0.25, own.mean()  # chance 1/6; seen, the probe puts > 0.9 on its label
    for g in set(groups):  # a group is held out together
        assert len({folds[i] for i, h in enumerate(groups) if h == g}) == 1
    assert (folds >= 0).all() and len(set(folds)) >= 2
    # the control: the same probe fitted on every video gives the videos it saw their labels
    from sklearn.linear_model import LogisticRegression

    seen = LogisticRegression(max_iter=2000, C=0.5).fit(features, labels).predict_proba(features)
    assert seen[np.arange(n), labels].mean() > 0.5


def test_blank_and_frozen_videos_are_found_and_not_called_duplicates(tiny_workspace, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_workspace / "data", data)
    label2id, records = load_prepared(data)
    moving = frames_of(data / records[0].path)
    made = {"black.mp4": np.zeros_like(moving), "black2.mp4": np.zeros_like(moving),
            "frozen.mp4": np.repeat(moving[5:6], len(moving), axis=0)}
    listed = []
    for name, frames in made.items():
        write_h264(frames, data / name)
        frames_n, fps, duration = probe_video(data / name)
        listed.append(VideoRecord(name, records[0].label, "train", name, frames_n, fps, duration))
    prints = [fingerprint(r, data, decode_pyav) for r in records + listed]
    found = audit_module.content_findings(records + listed, prints)
    assert sorted((f.path, f.issue) for f in found) == [("black.mp4", "blank"), ("black2.mp4", "blank"),
                                                        ("frozen.mp4", "static")]
    assert audit_module.duplicate_findings(records + listed, prints) == []  # black frames all hash alike


@pytest.fixture
def audited(tiny_workspace, tmp_path):
    """audit.py over a copy of the tiny folder with one altered copy of a train video listed in test."""
    config = tiny_config_dict(tmp_path)
    shutil.copytree(tiny_workspace / "data", tmp_path / "data")
    _, records = load_prepared(tmp_path / "data")
    original = next(r for r in records if r.split == "train")
    altered_copy(frames_of(tmp_path / "data" / original.path), tmp_path / "data" / "test" / "copy.mp4")
    frames, fps, duration = probe_video(tmp_path / "data" / "test" / "copy.mp4")
    with open(tmp_path / "data" / "manifest.csv", "a", newline="") as f:
        csv.writer(f).writerow(["test/copy.mp4", original.label, "test", "copy", frames, fps, duration])
    path = write_config(tmp_path / "c.yaml", config)
    result = run_script("audit.py", "--config", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "data" / "audit", original, result


def test_issues_csv_and_summary_shapes(audited):
    folder, original, result = audited
    with open(folder / "issues.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["path", "split", "issue", "score", "details"]
    assert {r["issue"] for r in rows} <= set(audit_module.KINDS)
    leaks = sorted((r["path"], r["split"]) for r in rows if r["issue"] == "leak")
    assert leaks == sorted([(original.path, "train"), ("test/copy.mp4", "test")])
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["counts"] == {kind: sum(r["issue"] == kind for r in rows) for kind in audit_module.KINDS}
    assert summary["leaked_videos"] == sorted(p for p, _ in leaks) and summary["leak_clusters"] == 1
    videos = len(load_prepared(folder.parent)[1])
    assert summary["videos"] == videos and 0 <= summary["probe_top1"] <= 1
    page = (folder / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") >= 2 and "copy.mp4" in page
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"audit of {videos} videos: 2 videos in clusters that leak across splits (1 clusters)")


def test_an_exclusion_and_a_relabel_list_change_only_their_rows(tiny_workspace, tmp_path):
    from video_classifier.core.config import load_config
    from video_classifier.core.errors import UserError
    from video_classifier.data.prepare import prepare

    _, before = load_prepared(tiny_workspace / "data")
    labels = sorted({r.label for r in before})
    dropped, moved = before[:2], before[5]
    other = next(label for label in labels if label != moved.label)
    fields = ["path", "split", "issue", "score", "details"]
    with open(tmp_path / "exclude.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows({"path": r.path, "split": r.split, "issue": "blank", "score": 1, "details": ""}
                         for r in dropped)
    with open(tmp_path / "relabel.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()  # no label column: the probe's suggestion in the details is taken
        writer.writerow({"path": moved.path, "split": moved.split, "issue": "label", "score": 0.9,
                         "details": f"labelled {moved.label}; the probe suggests {other} (p=0.91, its label p=0.02)"})
    config = tiny_config_dict(tmp_path)
    config["data"].update(exclude=str(tmp_path / "exclude.csv"), relabel=str(tmp_path / "relabel.csv"))
    prepare(load_config(write_config(tmp_path / "c.yaml", config)).data)
    _, after = load_prepared(tmp_path / "data")
    expected = [r if r.path != moved.path else VideoRecord(**{**r.__dict__, "label": other})
                for r in before if r not in dropped]
    assert after == expected  # every other row exactly as it was prepared without the lists
    config["data"].update(root=str(tmp_path / "again"), exclude=None)
    (tmp_path / "relabel.csv").write_text("path,split,issue,score,details\nnot/a/video.avi,train,label,1,x\n")
    with pytest.raises(UserError, match=r"relabel.csv line 2: not/a/video.avi is not among the videos"):
        prepare(load_config(write_config(tmp_path / "c2.yaml", config)).data)
    assert not (tmp_path / "again").exists()


def test_split_by_duplicates_keeps_a_cluster_in_one_split_even_across_classes(tiny_workspace, tmp_path):
    """Four clusters, each of a test video of one class and a val video of another (a copy filed under another
    class), named in an issues.csv: prepared again with it, each cluster lies in one split, train (so that
    no evaluation split keeps a copy of a training video), and every other video keeps a split."""
    from video_classifier.core.config import load_config
    from video_classifier.data.prepare import prepare

    _, tiny = load_prepared(tiny_workspace / "data")
    with open(tmp_path / "videos.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "group"])
        writer.writerows([str((tiny_workspace / "data" / r.path).resolve()), r.label, f"g{r.group}"] for r in tiny)
    config = tiny_config_dict(tmp_path)
    config["data"].update(source="folder", videos=str(tmp_path / "videos.csv"), root=str(tmp_path / "plain"))
    prepare(load_config(write_config(tmp_path / "plain.yaml", config)).data)
    _, plain = load_prepared(tmp_path / "plain")
    labels = sorted({r.label for r in plain})
    clusters_made = [[next(r for r in plain if r.label == labels[n] and r.split == "test"),
                      next(r for r in plain if r.label == labels[n + 1] and r.split == "val")] for n in (0, 2, 4, 6)]
    with open(tmp_path / "issues.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "split", "issue", "score", "details"])
        writer.writerows([r.path, r.split, "leak", 30.0, f"cluster {n} (2 videos in test+val): like ..."]
                         for n, cluster in enumerate(clusters_made, start=1) for r in cluster)
    config["data"].update(root=str(tmp_path / "grouped"))
    result = run_script("prepare_data.py", "--config", str(write_config(tmp_path / "grouped.yaml", config)),
                        "--split-by-duplicates", str(tmp_path / "issues.csv"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 duplicate clusters kept within one split each" in result.stdout
    _, grouped = load_prepared(tmp_path / "grouped")
    split_of = {r.path: r.split for r in grouped}
    assert [[split_of[r.path] for r in cluster] for cluster in clusters_made] == [["train", "train"]] * 4
    assert sorted(split_of) == sorted(r.path for r in plain)
    recorded = json.loads((tmp_path / "grouped" / "prepared_from.json").read_text())
    assert str(tmp_path / "issues.csv") in json.dumps(recorded)


def test_train_warns_of_leaks_an_audit_found_until_they_are_resolved(tiny_workspace, tmp_path):
    from video_classifier.data.audit_lists import leak_warning

    data = tmp_path / "data"
    shutil.copytree(tiny_workspace / "data", data)
    _, records = load_prepared(data)
    pair = [next(r for r in records if r.split == "train"), next(r for r in records if r.split == "test")]
    assert leak_warning(str(data), records) is None  # no audit yet
    (data / "audit").mkdir(exist_ok=True)
    (data / "audit" / "summary.json").write_text(json.dumps({"leaked_videos": [r.path for r in pair]}))
    line = leak_warning(str(data), records)
    assert line is not None and "2 videos" in line and "--split-by-duplicates" in line and "\n" not in line
    assert leak_warning(str(data), [r for r in records if r is not pair[1]]) is None  # the copy excluded
