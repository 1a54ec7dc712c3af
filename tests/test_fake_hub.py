"""Check that `fake_hub.serve_hub` is a Hub that `huggingface_hub.hf_hub_download` accepts."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_hub import FakeHub, serve_hub
from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

REPO = "someone/clips"
FILENAME = "videos/clip 1.mp4"  # a folder and a space: the client URL-quotes the path
CONTENT = bytes(range(256)) * 40


@pytest.fixture(autouse=True)
def no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop the client's agent-detection call to the real Hub (`constants.ENDPOINT`) in this process."""
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(CONTENT)
    return path


@pytest.fixture
def hub(source: Path) -> Iterator[FakeHub]:
    with serve_hub({(REPO, FILENAME): source}) as server:
        yield server


def _download(hub: FakeHub, cache: Path, filename: str = FILENAME, repo_id: str = REPO) -> Path:
    path = hf_hub_download(repo_id, filename, repo_type="dataset", endpoint=hub.url, cache_dir=cache)
    assert isinstance(path, str)
    return Path(path)


def test_download_returns_the_served_bytes(hub: FakeHub, tmp_path: Path) -> None:
    path = _download(hub, tmp_path / "cache")

    assert path.read_bytes() == CONTENT
    assert path.parent.name == "videos" and path.parents[1].name == hub.commits[REPO]
    resolve = "/datasets/someone/clips/resolve/main/videos/clip%201.mp4"
    assert hub.requests == [("HEAD", resolve), ("GET", resolve)]


def test_second_download_is_served_from_cache(hub: FakeHub, tmp_path: Path) -> None:
    first = _download(hub, tmp_path / "cache")
    second = _download(hub, tmp_path / "cache")

    assert second == first
    assert [method for method, _ in hub.requests] == ["HEAD", "GET", "HEAD"]


def test_missing_file_and_repo_raise_hub_errors(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(RemoteEntryNotFoundError):
        _download(hub, tmp_path / "cache", filename="missing.mp4")
    with pytest.raises(RepositoryNotFoundError):
        _download(hub, tmp_path / "cache", repo_id="someone/other")


def test_range_request_returns_partial_content(hub: FakeHub) -> None:
    request = urllib.request.Request(
        f"{hub.url}/datasets/{REPO}/resolve/main/videos/clip%201.mp4", headers={"Range": "bytes=100-"}
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 100-{len(CONTENT) - 1}/{len(CONTENT)}"
        assert response.read() == CONTENT[100:]


def test_hf_endpoint_environment_variable(hub: FakeHub, tmp_path: Path) -> None:
    code = (
        "import sys, huggingface_hub as h;"
        " print(h.hf_hub_download(*sys.argv[1:3], repo_type='dataset', cache_dir=sys.argv[3]))"
    )
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, REPO, FILENAME, str(tmp_path / "cache")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )

    assert Path(result.stdout.strip()).read_bytes() == CONTENT
    assert [method for method, _ in hub.requests] == ["HEAD", "GET"]


def test_one_server_holds_a_dataset_and_a_model(source: Path, tmp_path: Path) -> None:
    model_repo = "someone/net"
    files = {("dataset", REPO, FILENAME): source, ("model", model_repo, "config.json"): source}
    with serve_hub(files) as hub:
        assert _download(hub, tmp_path / "cache").read_bytes() == CONTENT
        path = hf_hub_download(model_repo, "config.json", endpoint=hub.url, cache_dir=tmp_path / "cache")
        assert Path(path).read_bytes() == CONTENT
        with pytest.raises(RepositoryNotFoundError):  # the type is part of a repo's address
            hf_hub_download(REPO, FILENAME, endpoint=hub.url, cache_dir=tmp_path / "cache")

        # transformers pins the revision with repo_info before it downloads a checkpoint
        api = HfApi(endpoint=hub.url)
        info = api.model_info(model_repo)
        assert info.sha == hub.commits[model_repo] and [s.rfilename for s in info.siblings] == ["config.json"]
        assert api.dataset_info(REPO, revision="main").sha == hub.commits[REPO]
        with pytest.raises(RepositoryNotFoundError):
            api.model_info(REPO)
        with pytest.raises(RevisionNotFoundError):
            api.model_info(model_repo, revision="v2")


def test_uploads_commit_regular_files_that_downloads_then_serve(tmp_path: Path) -> None:
    """create_repo and upload_folder (as the Trainer's push calls them) and create_commit: every file inline
    in the commit (no Xet or LFS upload), each commit a new hash, unchanged files left out, deletions applied."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub.errors import HfHubHTTPError

    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    (folder / "README.md").write_text("---\ntags: [video]\n---\n# card\n")
    (folder / "model.safetensors").write_bytes(CONTENT)
    (folder / "sub" / "a.json").write_text("{}")
    with serve_hub({}) as hub:
        with pytest.raises(HfHubHTTPError, match="401"):  # writing needs a token, as on the Hub
            HfApi(endpoint=hub.url, token=False).create_repo("someone/net")
        api = HfApi(endpoint=hub.url, token="hf_dummy")
        assert api.create_repo("someone/net").repo_id == "someone/net"
        assert api.create_repo("someone/net", exist_ok=True).repo_id == "someone/net"
        created = hub.commits["someone/net"]

        first = api.upload_folder(repo_id="someone/net", folder_path=folder, commit_message="first")
        assert first.oid == hub.commits["someone/net"] != created
        assert [s.rfilename for s in api.model_info("someone/net").siblings] == [
            "README.md", "model.safetensors", "sub/a.json"]
        path = hf_hub_download("someone/net", "model.safetensors", endpoint=hub.url, cache_dir=tmp_path / "cache")
        assert Path(path).read_bytes() == CONTENT and Path(path).parent.name == first.oid
        assert not any("/lfs" in p or "xet" in p for _, p in hub.requests)

        (folder / "sub" / "a.json").write_text('{"b": 1}')
        api.upload_folder(repo_id="someone/net", folder_path=folder, commit_message="second")
        *_, preupload, commit = hub.requests
        assert preupload[1].endswith("/preupload/main") and commit[1] == "/api/models/someone/net/commit/main"
        path = hf_hub_download("someone/net", "sub/a.json", endpoint=hub.url, cache_dir=tmp_path / "cache")
        assert Path(path).read_text() == '{"b": 1}'
        served = len(hub.requests)  # preupload gives each file's oid: nothing changed, nothing committed
        assert api.upload_folder(repo_id="someone/net", folder_path=folder).oid == hub.commits["someone/net"]
        assert not any(p.endswith("/commit/main") for _, p in hub.requests[served:])

        api.create_commit("someone/net", [CommitOperationDelete("sub/"), CommitOperationDelete("README.md"),
                                          CommitOperationAdd("x.txt", b"x")], commit_message="third")
        assert [s.rfilename for s in api.model_info("someone/net").siblings] == ["model.safetensors", "x.txt"]
        with pytest.raises(RemoteEntryNotFoundError):
            api.delete_file("missing.txt", "someone/net")
        with pytest.raises(ValueError, match="Invalid metadata"):
            api.upload_file(path_or_fileobj=b"---\n[not: a mapping\n---\n", path_in_repo="README.md",
                            repo_id="someone/net")
        with pytest.raises(HfHubHTTPError, match="412"):
            api.upload_file(path_or_fileobj=b"y", path_in_repo="y.txt", repo_id="someone/net", parent_commit=created)
