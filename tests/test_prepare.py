import io
import json
import tarfile
from pathlib import Path

import pytest
from conftest import run_script, tiny_config_dict, write_config
from fake_hub import serve_hub

from video_classifier.core.config import DataConfig
from video_classifier.core.errors import UserError
from video_classifier.data.manifest import MANIFEST, load_prepared
from video_classifier.data.prepare import prepare


def make_archive(src: Path, dest: Path, top: str = "UCF101_subset") -> Path:
    """A .tar.gz of a prepared folder's videos in the Hub archive's layout: <top>/{train,val,test}/..."""
    with tarfile.open(dest, "w:gz") as tar:
        for split in ("train", "val", "test"):
            tar.add(src / split, arcname=f"{top}/{split}")
    return dest


def test_rerun_does_nothing(tiny_workspace, capsys):
    root = tiny_workspace / "data"
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    prepare(DataConfig(source="synthetic", root=str(root), synthetic=_synthetic_of(tiny_workspace)))
    assert "nothing to do" in capsys.readouterr().out
    assert before == {p: p.stat().st_mtime_ns for p in root.rglob("*")}


def _synthetic_of(workspace):
    from video_classifier.core.config import load_config

    return load_config(workspace / "config.yaml").data.synthetic


def test_rerun_with_other_source_refuses(tiny_workspace):
    root = tiny_workspace / "data"
    with pytest.raises(UserError, match=r"was prepared with other data settings \(.*source.*\): delete"):
        prepare(DataConfig(source="archive", archive="x.tar.gz", root=str(root)))


def test_archive_source(tiny_workspace, tmp_path):
    archive = make_archive(tiny_workspace / "data", tmp_path / "subset.tar.gz")
    root = tmp_path / "from_archive"
    prepare(DataConfig(source="archive", archive=str(archive), root=str(root)))
    label2id, records = load_prepared(root)
    _, original = load_prepared(tiny_workspace / "data")
    assert sorted(r.path for r in records) == sorted(r.path for r in original)
    assert not list(tmp_path.glob(".*partial"))


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("UCF101_subset/train/A/v_A_g01_c01.avi")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("../evil.txt"),
        tarfile.TarInfo("/tmp/evil.txt"),
        "symlink",
    ],
    ids=["dotdot", "absolute", "link-outside"],
)
def test_malicious_archive_is_refused(tmp_path, member):
    if member == "symlink":
        member = tarfile.TarInfo("UCF101_subset/escape")
        member.type, member.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
    else:
        member.size = 1
    archive = _tar_with(tmp_path / "evil.tar.gz", member)
    root = tmp_path / "out" / "data"
    with pytest.raises(UserError, match=r"refusing archive .*evil\.tar\.gz"):
        prepare(DataConfig(source="archive", archive=str(archive), root=str(root)))
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()
    assert not (root / MANIFEST).exists()


def test_corrupt_video_is_named(tmp_path, tiny_workspace):
    src = tmp_path / "src"
    (src / "train" / "PanLeft").mkdir(parents=True)
    for split in ("val", "test"):
        (src / split).mkdir()
    bad = src / "train" / "PanLeft" / "v_PanLeft_g01_c01.avi"
    bad.write_bytes(b"RIFF not really a video")
    archive = make_archive(src, tmp_path / "bad.tar.gz")
    with pytest.raises(UserError, match=r"cannot read video .*v_PanLeft_g01_c01\.avi.*remove or replace"):
        prepare(DataConfig(source="archive", archive=str(archive), root=str(tmp_path / "data")))
    assert not (tmp_path / "data").exists()


def test_existing_foreign_folder_is_kept(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "precious.txt").write_text("mine")
    with pytest.raises(UserError, match="holds no manifest.csv"):
        prepare(DataConfig(source="synthetic", root=str(root)))
    assert (root / "precious.txt").read_text() == "mine"


def test_hub_download_through_local_endpoint(tiny_workspace, tmp_path):
    archive = make_archive(tiny_workspace / "data", tmp_path / "UCF101_subset.tar.gz")
    config = tiny_config_dict(tmp_path)
    config["data"].update(source="hub", root=str(tmp_path / "hubdata"))
    config_path = write_config(tmp_path / "hub.yaml", config)
    with serve_hub({("sayakpaul/ucf101-subset", "UCF101_subset.tar.gz"): archive}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
               "HF_HUB_DISABLE_TELEMETRY": "1"}
        result = run_script("prepare_data.py", "--config", str(config_path), env=env)
        assert result.returncode == 0, result.stderr
        downloads = [r for r in hub.requests if r[0] == "GET"]
        assert downloads and downloads[0][1].endswith("/UCF101_subset.tar.gz")
        # a second run on the prepared folder touches neither the network nor the files
        again = run_script("prepare_data.py", "--config", str(config_path), env=env)
        assert again.returncode == 0 and "nothing to do" in again.stdout
        assert len([r for r in hub.requests if r[0] == "GET"]) == len(downloads)
    _, records = load_prepared(tmp_path / "hubdata")
    assert len(records) == len(load_prepared(tiny_workspace / "data")[1])
    assert json.loads((tmp_path / "hubdata" / "prepared_from.json").read_text())["source"] == "hub"


def test_hub_missing_file_is_one_line(tmp_path):
    config = tiny_config_dict(tmp_path)
    config["data"].update(source="hub", root=str(tmp_path / "hubdata"), hub_filename="nope.tar.gz")
    config_path = write_config(tmp_path / "hub.yaml", config)
    with serve_hub({}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
               "HF_HUB_DISABLE_TELEMETRY": "1"}
        result = run_script("prepare_data.py", "--config", str(config_path), env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in result.stderr
