"""data.source: hf_dataset — a `videofolder` dataset (metadata.csv) made from the tiny synthetic videos, read by
`datasets` from the local stand-in Hub: the same labels, videos and clips as the prepared folder; one-line errors."""

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import OUR_TO_THEIRS, REPO_ID, hub_files, run_main, talk_to_hub, tiny_config_dict, write_config
from fake_hub import serve_hub

from video_classifier.data.hf_source import datasets_library
from video_classifier.data.manifest import load_prepared
from video_classifier.data.storage import video_source


def hf_config(tmp_path: Path, path: str, **hf) -> Path:
    data = tiny_config_dict(tmp_path)
    data["data"].update(source="hf_dataset", hf_dataset={"path": path, **hf})
    data["train"]["epochs"] = 1
    return write_config(tmp_path / "config.yaml", data)


def test_train_py_fine_tunes_on_a_hub_videofolder(videofolder, tiny_workspace, tmp_path, monkeypatch):
    import datasets.config

    with serve_hub(hub_files(videofolder)) as hub:
        talk_to_hub(monkeypatch, hub, tmp_path / "hub-cache")
        monkeypatch.setattr(datasets.config, "HF_ENDPOINT", hub.url)
        monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
        config = hf_config(tmp_path, REPO_ID, splits=OUR_TO_THEIRS)
        prepared = run_main("prepare_data.py", "--config", str(config))
        assert prepared.returncode == 0, prepared.stderr[-3000:]
        assert any("/tree/" in path for _, path in hub.requests)  # listed through the tree API, over HTTP
        result = run_main("train.py", "--config", str(config))
        assert result.returncode == 0, result.stderr[-3000:]

    root = tmp_path / "data"
    label2id, records = load_prepared(root)
    folder_labels, folder_records = load_prepared(tiny_workspace / "data")
    assert label2id == folder_labels
    ours = {(Path(r.path).name, r.label, r.split, r.frames) for r in records}
    assert ours == {(Path(r.path).name, r.label, r.split, r.frames) for r in folder_records}
    # the manifest names the files in huggingface_hub's cache: nothing copied into data.root
    assert all(Path(r.path).is_relative_to(tmp_path / "hub-cache") and Path(r.path).is_file() for r in records)
    assert not list(root.rglob("*.avi"))
    folder_file = {Path(r.path).name: tiny_workspace / "data" / r.path for r in folder_records}
    assert all(Path(r.path).read_bytes() == folder_file[Path(r.path).name].read_bytes() for r in records)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for split in ("val", "test"):
        assert metrics[split]["videos"] == sum(r.split == split for r in folder_records)
        assert metrics[split]["clips"] == metrics[split]["videos"] * 3 and not metrics[split]["videos_left_out"]


def test_pooled_splits_are_by_group(videofolder, tmp_path):
    """splits: null pools every split of the dataset and splits it by group (data.group_pattern), per class."""
    result = run_main("prepare_data.py", "--config", str(hf_config(tmp_path, str(videofolder))))
    assert result.returncode == 0, result.stderr[-3000:]
    _, records = load_prepared(tmp_path / "data")
    assert len(records) == len(list(videofolder.rglob("*.avi")))
    split_of_group = defaultdict(set)
    for r in records:
        split_of_group[r.label, r.group].add(r.split)
    assert all(len(splits) == 1 for splits in split_of_group.values())
    assert {r.split for r in records} == {"train", "val", "test"}


def test_a_missing_video_column_is_one_line(videofolder, tmp_path):
    result = run_main("prepare_data.py", "--config", str(hf_config(tmp_path, str(videofolder), video_column="clip")))
    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "data.hf_dataset.video_column" in message and "'clip'" in message and "video, label" in message


def test_splits_must_name_train(tmp_path):
    result = run_main("prepare_data.py", "--config", str(hf_config(tmp_path, "x/y", splits={"val": "validation"})))
    assert result.returncode != 0 and "data.hf_dataset.splits" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_classlabel_column_gives_the_folders_labels(videofolder, tiny_workspace, tmp_path):
    """A videofolder without metadata: `datasets` makes the label a ClassLabel from the class folders; its names,
    not its ids, become our labels."""
    dataset = tmp_path / "by-class"
    for video in videofolder.rglob("*.avi"):
        dest = dataset / video.parent.name / video.name.split("_")[1] / video.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(video, dest)
    result = run_main("prepare_data.py", "--config", str(hf_config(tmp_path, str(dataset), splits=OUR_TO_THEIRS)))
    assert result.returncode == 0, result.stderr[-3000:]
    label2id, records = load_prepared(tmp_path / "data")
    assert label2id == load_prepared(tiny_workspace / "data")[0]
    assert all(Path(r.path).name.split("_")[1] == r.label for r in records)


def test_a_list_of_strings_column_is_multi_label(videofolder, tmp_path):
    """metadata.jsonl's `labels` lists (some empty): a multi-label folder, each video's labels kept."""
    dataset = tmp_path / "multi"
    shutil.copytree(videofolder / "train", dataset / "train")
    lines = []
    for video in sorted(videofolder.glob("train/*.avi")):
        pan = video.name.split("_")[1]
        lines.append(json.dumps({"file_name": video.name, "labels": [pan, "Any"] if "Up" in pan else []}))
    (dataset / "train" / "metadata.csv").unlink()
    (dataset / "train" / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    config = hf_config(tmp_path, str(dataset), label_column="labels")
    result = run_main("prepare_data.py", "--config", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    labels = json.loads((tmp_path / "data" / "labels.json").read_text())
    assert labels["task"] == "multi_label"
    _, records = load_prepared(tmp_path / "data")
    assert len(records) == len(lines)
    assert {r.label for r in records if "Up" not in Path(r.path).name} == {""}
    assert all(r.label.split("|")[0] == "Any" for r in records if "Up" in Path(r.path).name)


def test_a_group_column_keeps_each_recording_in_one_split(videofolder, tmp_path):
    """metadata.csv's `recording` column names each video's group; pooled splits keep a group together."""
    dataset = tmp_path / "grouped"
    shutil.copytree(videofolder, dataset)
    recording = {}
    for metadata in dataset.glob("*/metadata.csv"):
        rows = list(csv.DictReader(metadata.open()))
        for i, row in enumerate(rows):  # four recordings across the classes, unrelated to the names' groups
            recording[row["file_name"]] = row["recording"] = f"r{i % 4}"
        with metadata.open("w", newline="") as f:
            writer = csv.DictWriter(f, ["file_name", "label", "recording"])
            writer.writeheader()
            writer.writerows(rows)
    result = run_main("prepare_data.py", "--config", str(hf_config(tmp_path, str(dataset), group_column="recording")))
    assert result.returncode == 0, result.stderr[-3000:]
    _, records = load_prepared(tmp_path / "data")
    assert all(r.group == recording[Path(r.path).name] for r in records)
    split_of_group = defaultdict(set)
    for r in records:
        split_of_group[r.label, r.group].add(r.split)
    assert all(len(splits) == 1 for splits in split_of_group.values())


@pytest.mark.parametrize("streaming", [False, True])
def test_a_revision_lists_that_commits_files(videofolder, tmp_path, monkeypatch, streaming):
    """data.hf_dataset.revision: the rows of the dataset at that tag (here holding the training videos of two
    classes only), not of the default branch; a stream pins that tag's commit."""
    import datasets.config

    files = hub_files(videofolder)
    tagged = tmp_path / "v1"
    for split in ("train", "validation", "test"):
        kept = [row for row in csv.DictReader((videofolder / split / "metadata.csv").open())
                if row["label"] in ("PanLeft", "PanRight")]
        (tagged / split).mkdir(parents=True)
        with (tagged / split / "metadata.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, ["file_name", "label"])
            writer.writeheader()
            writer.writerows(kept)
        for row in kept:
            files[f"{REPO_ID}@v1", f"{split}/{row['file_name']}"] = videofolder / split / row["file_name"]
        files[f"{REPO_ID}@v1", f"{split}/metadata.csv"] = tagged / split / "metadata.csv"
    with serve_hub(files) as hub:
        talk_to_hub(monkeypatch, hub, tmp_path / "hub-cache")
        monkeypatch.setattr(datasets.config, "HF_ENDPOINT", hub.url)
        monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
        config = hf_config(tmp_path, REPO_ID, splits=OUR_TO_THEIRS, revision="v1", streaming=streaming)
        result = run_main("prepare_data.py", "--config", str(config))
        assert result.returncode == 0, result.stderr[-3000:]
        commit = hub.commits[f"{REPO_ID}@v1"]
    label2id, records = load_prepared(tmp_path / "data")
    assert set(label2id) == {"PanLeft", "PanRight"}
    assert len(records) == sum(1 for key in files if key[0] == f"{REPO_ID}@v1" and key[1].endswith(".avi"))
    if streaming:
        stream = json.loads((tmp_path / "data" / "stream.json").read_text())
        assert stream["revision"] == commit and all(f"@{commit}/" in r.path for r in records)


def test_train_py_fine_tunes_on_a_hub_parquet_dataset_of_video_bytes(videofolder, tiny_workspace, tmp_path,
                                                                     monkeypatch):
    """A Parquet dataset whose Video column holds each video's bytes (as `push_to_hub` writes one): the manifest
    names each video's row in `datasets`' Arrow cache, nothing is copied out, and training and evaluation read
    the same videos, labels and clips as the folder."""
    import datasets.config

    datasets = datasets_library()  # as the package uses it (a torchcodec that does not import is left out)
    parquet = tmp_path / "parquet"
    features = datasets.Features({"video": datasets.Video(), "label": datasets.Value("string")})
    for split in OUR_TO_THEIRS.values():
        rows = list(csv.DictReader((videofolder / split / "metadata.csv").open()))
        table = datasets.Dataset.from_dict(
            {"video": [{"bytes": (videofolder / split / r["file_name"]).read_bytes(), "path": r["file_name"]}
                       for r in rows], "label": [r["label"] for r in rows]}, features=features)
        table.to_parquet(str(parquet / "data" / f"{split}-00000-of-00001.parquet"))
    assert not list(parquet.rglob("*.avi"))
    with serve_hub(hub_files(parquet, "someone/tiny-parquet")) as hub:
        talk_to_hub(monkeypatch, hub, tmp_path / "hub-cache")
        monkeypatch.setattr(datasets.config, "HF_ENDPOINT", hub.url)
        monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
        (tmp_path / "streamed").mkdir()
        streamed = hf_config(tmp_path / "streamed", "someone/tiny-parquet", splits=OUR_TO_THEIRS, streaming=True)
        refused = run_main("prepare_data.py", "--config", str(streamed))  # bytes in a stream: no file to name
        errors = [line for line in refused.stderr.splitlines() if line.startswith("error")]  # after the progress bar
        assert refused.returncode != 0 and len(errors) == 1 and refused.stderr.strip().endswith(errors[0])
        assert "bytes" in errors[0] and "data.hf_dataset.streaming: false" in errors[0]
        config = hf_config(tmp_path, "someone/tiny-parquet", splits=OUR_TO_THEIRS)
        prepared = run_main("prepare_data.py", "--config", str(config))
        assert prepared.returncode == 0, prepared.stderr[-3000:]
    result = run_main("train.py", "--config", str(config))  # from datasets' cache: the Hub is not asked again
    assert result.returncode == 0, result.stderr[-3000:]
    _, records = load_prepared(tmp_path / "data")
    folder_labels, folder_records = load_prepared(tiny_workspace / "data")
    assert all(r.path.startswith(str(tmp_path / "datasets-cache")) and ".arrow:" in r.path for r in records)
    by_name = {Path(r.path).name: r for r in folder_records}
    names = [r.path.rsplit(":", 1)[1] for r in records]
    assert sorted(names) == sorted(by_name)
    assert all((r.label, r.split, r.frames, r.fps) == (by_name[n].label, by_name[n].split, by_name[n].frames,
                                                       by_name[n].fps) for r, n in zip(records, names))
    assert not list((tmp_path / "data").rglob("*.avi"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for split in ("val", "test"):
        assert metrics[split]["videos"] == sum(r.split == split for r in folder_records)
        assert metrics[split]["clips"] == metrics[split]["videos"] * 3 and not metrics[split]["videos_left_out"]
    # prepare_data.py --shards takes the rows' bytes: the same videos, byte for byte
    shards = tmp_path / "shards"
    assert run_main("prepare_data.py", "--config", str(config), "--shards", str(shards)).returncode == 0
    _, shard_records = load_prepared(shards)
    by_split = [r for split in OUR_TO_THEIRS for r in records if r.split == split]  # shards are written split by split
    assert [(r.label, r.split, r.frames) for r in shard_records] == [(r.label, r.split, r.frames) for r in by_split]
    assert all(video_source(shards, s.path).open().read() == video_source("", r.path).open().read()
               for s, r in zip(shard_records, by_split))


def test_our_shards_read_as_a_webdataset_dataset(tiny_workspace, tmp_path):
    """A WebDataset folder (our own shards: <key>.avi + <key>.json), read by `datasets`' webdataset builder: the
    video column holds bytes, the label and group are fields of the json column (json.label, json.group)."""
    from video_classifier.data.shards import write_shards

    shards = write_shards(tiny_workspace / "data", tmp_path / "shards", 0.05)
    for extra in ("manifest.csv", "index.json", "labels.json"):  # only the tars: a plain WebDataset folder
        (shards / extra).unlink()
    config = hf_config(tmp_path, str(shards), video_column="avi", label_column="json.label",
                       group_column="json.group", splits=OUR_TO_THEIRS)
    result = run_main("prepare_data.py", "--config", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    label2id, records = load_prepared(tmp_path / "data")
    folder_labels, folder_records = load_prepared(tiny_workspace / "data")
    assert label2id == folder_labels
    fields = lambda r: (r.label, r.split, r.group, r.frames, r.fps)  # noqa: E731
    assert sorted(map(fields, records)) == sorted(map(fields, folder_records))
    (tmp_path / "x").mkdir()
    missing = run_main("prepare_data.py", "--config", str(hf_config(tmp_path / "x", str(shards), video_column="avi",
                                                                     label_column="json.class")))
    assert missing.returncode != 0 and "'json.class'" in missing.stderr and "json.label" in missing.stderr
