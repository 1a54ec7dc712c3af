"""A local HTTP server that stands in for the Hugging Face Hub's file endpoint.

`huggingface_hub.hf_hub_download` (2.4.0) makes two requests to
`{endpoint}/{datasets/|spaces/|kernels/|}{repo_id}/resolve/{revision}/{filename}`:

* HEAD for the metadata: `X-Repo-Commit` (commit hash), `ETag` (cache key of the blob) and
  `Content-Length` (expected size). Without `X-Repo-Commit` or `ETag` the client refuses the file.
* GET for the bytes, with `Range: bytes=N-` when it resumes a partial download.

Later calls for a file already cached repeat only the HEAD. Errors are typed from the
`X-Error-Code` header: `RepoNotFound`, `RevisionNotFound` or `EntryNotFound`. No `X-Xet-*` header is
ever sent, so the client takes the plain HTTP download path, never Xet. Unless
`HF_HUB_DISABLE_TELEMETRY` is set, a process whose `HF_ENDPOINT` points here also sends
`GET /api/agent-harnesses` once; it gets a plain 404, which the client ignores.

transformers (5.24) `from_pretrained` first pins the revision with `HfApi.repo_info`:
`GET {endpoint}/api/{models|datasets|spaces}/{repo_id}[/revision/{revision}]`, answered with JSON
holding the commit (`sha`) and the file list (`siblings`); it then fetches each file at that commit,
and asks for processor configs a repo may lack (`processor_config.json`,
`video_preprocessor_config.json`), which fail as `EntryNotFound`, as on the Hub.

`serve_hub` answers those requests from local files on 127.0.0.1, on an ephemeral port, so that
downloads work offline through `endpoint=` or the `HF_ENDPOINT` environment variable. One server
holds repos of any types side by side (a training run downloads a dataset and a model): the URL
prefix picks the type, as on the Hub.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/", "kernel": "kernels/"}
_RESOLVE_PATH = re.compile(r"/(?P<repo>.+?)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)")
_INFO_PATH = re.compile(
    r"/api/(?P<kind>models|datasets|spaces)/(?P<repo_id>[^/]+(?:/[^/]+)?)(?:/revision/(?P<revision>[^/]+))?"
)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass
class FakeHub:
    """What `serve_hub` yields: the endpoint URL, each repo's commit hash, and the requests served."""

    url: str
    commits: dict[str, str]
    requests: list[tuple[str, str]] = field(default_factory=list)


class _HubServer(ThreadingHTTPServer):
    def __init__(self, files: Mapping[tuple[str, ...], Path], repo_type: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        # {(repo_type, repo_id, filename): path}; a 2-tuple key is a repo of the default type
        self.files = {key if len(key) == 3 else (repo_type, *key): path for key, path in files.items()}
        repos = {(kind, repo_id) for kind, repo_id, _ in self.files}
        if len({repo_id for _, repo_id in repos}) < len(repos):
            raise ValueError("one repo id served as two repo types: FakeHub.commits is keyed by repo id")
        commits = {repo_id: hashlib.sha1(f"{kind}/{repo_id}".encode()).hexdigest() for kind, repo_id in repos}
        self.repo_types = {repo_id: kind for kind, repo_id in repos}
        self.etags: dict[Path, str] = {}  # hashed once per file: a checkpoint is hundreds of MB
        self.hub = FakeHub(url=f"http://127.0.0.1:{self.server_address[1]}", commits=commits)

    def find_repo(self, url_repo: str) -> tuple[str, str]:
        """(repo_type, repo_id) of a repo path in a URL: "datasets/a/b" -> ("dataset", "a/b")."""
        for kind, prefix in _URL_PREFIXES.items():
            if prefix and url_repo.startswith(prefix):
                return kind, url_repo[len(prefix) :]
        return "model", url_repo


class _Handler(BaseHTTPRequestHandler):
    server: _HubServer

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet; `FakeHub.requests` records the traffic instead."""

    def _serve(self, send_body: bool) -> None:
        hub = self.server.hub
        hub.requests.append((self.command, self.path))
        url_path = urlsplit(self.path).path
        info = _INFO_PATH.fullmatch(url_path)
        if info is not None:
            return self._repo_info(info["kind"][:-1], unquote(info["repo_id"]), unquote(info["revision"] or "main"))
        match = _RESOLVE_PATH.fullmatch(url_path)
        if match is None:  # e.g. GET /api/agent-harnesses, which the client tolerates failing
            return self._error(None)
        repo_type, repo_id = self.server.find_repo(match["repo"])
        if self.server.repo_types.get(repo_id) != repo_type:
            return self._error("RepoNotFound")
        commit = hub.commits[repo_id]
        if unquote(match["revision"]) not in ("main", commit):
            return self._error("RevisionNotFound")
        path = self.server.files.get((repo_type, repo_id, unquote(match["filename"])))
        if path is None:
            return self._error("EntryNotFound", commit)

        data = path.read_bytes()
        size = len(data)
        start, end = 0, size - 1
        status = 200
        requested = _RANGE.fullmatch(self.headers.get("Range", ""))
        if requested is not None and any(requested.groups()):
            first, last = requested.groups()
            start = int(first) if first else max(size - int(last), 0)
            end = min(int(last), size - 1) if first and last else size - 1
            if start >= size or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206

        self.send_response(status)
        self.send_header("X-Repo-Commit", commit)
        etag = self.server.etags.get(path) or self.server.etags.setdefault(path, hashlib.sha256(data).hexdigest())
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if send_body:
            self.wfile.write(data[start : end + 1])

    def _repo_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        """The fields of `HfApi.repo_info`'s JSON that clients read: id, commit sha, file list."""
        if self.server.repo_types.get(repo_id) != repo_type:
            return self._error("RepoNotFound")
        commit = self.server.hub.commits[repo_id]
        if revision not in ("main", commit):
            return self._error("RevisionNotFound")
        files = sorted(name for kind, repo, name in self.server.files if (kind, repo) == (repo_type, repo_id))
        body = json.dumps({
            "id": repo_id, "sha": commit, "private": False, "gated": False, "disabled": False,
            "siblings": [{"rfilename": name} for name in files],
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    def _error(self, code: str | None, commit: str | None = None) -> None:
        self.send_response(404)
        if code is not None:
            self.send_header("X-Error-Code", code)
        if commit is not None:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def serve_hub(files: Mapping[tuple[str, ...], Path], repo_type: str = "dataset") -> Iterator[FakeHub]:
    """Serve `files` as a fake Hub; yield its `FakeHub` handle.

    Keys are `(repo_id, filename)` for a repo of type `repo_type`, or `(repo_type, repo_id, filename)`
    to mix types on one server: `{("dataset", "a/videos", "x.tar.gz"): p, ("model", "a/net", "config.json"): q}`.
    Every repo answers at revision "main" and at its commit hash `FakeHub.commits[repo_id]`. Each
    HEAD/GET is appended to `FakeHub.requests` as (method, raw request path).
    """
    server = _HubServer(files, repo_type)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
