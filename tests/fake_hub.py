"""A local HTTP server that stands in for the Hugging Face Hub's file and upload endpoints.

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

Uploads: transformers' `Trainer` (with `push_to_hub`) calls `HfApi.create_repo(exist_ok=True)` when
it is built, then `HfApi.upload_folder` on each checkpoint save and in `Trainer.push_to_hub`; no
`whoami` call is made when the repo id names its owner. With `hf_xet` installed, `upload_folder`
runs its streamed pipeline (`_upload_pipeline.py`: files asked about 256 at a time, committed in
batches of up to 100 MB of inline content); without it, or through `create_commit`/`upload_file`,
one commit. Both make the same requests, POSTs that need an `Authorization` header (any token;
without one: 401, as on the Hub):

* `/api/repos/create`, JSON `{name, organization, type}`: answered with `{"url": ...}`, the repo's
  web URL, from which the client reads the repo id. A repo that exists is a 409 carrying the same
  `url`, which `exist_ok=True` accepts.
* `/api/validate-yaml`, JSON `{content, repoType}`, before any commit that adds a README.md: JSON
  `{errors, warnings}` (the client reads the body before the status). Front matter that is not a
  YAML mapping is refused with 400, which the client raises as `ValueError`.
* `/api/{models|datasets|spaces}/{repo_id}/preupload/{revision}`, JSON `{files: [{path, size,
  sample}]}`: for each file its `uploadMode`, `shouldIgnore` and `oid`, the git blob SHA-1 of the
  file the repo holds at that path (the client leaves out files whose content has it). The answer
  is always `regular`: the client uploads a file before the commit only when told `lfs`, and then
  through Xet whenever `hf_xet` is installed (it does not ask the server first), through the LFS
  batch API otherwise; `regular` keeps both out, and every file travels inside the commit.
* `/api/{models|datasets|spaces}/{repo_id}/commit/{revision}`, NDJSON: a `header` line (`summary`,
  `description`, optional `parentCommit`), then one line per operation, `file` (`path`, base64
  `content`), `deletedFile` or `deletedFolder` (`path`). Answered with `commitOid` and `commitUrl`
  (`{endpoint}/{prefix}{repo_id}/commit/{oid}`, parsed back to the repo). `lfsFile` lines, pull
  requests (`create_pr`) and branches other than `main` are refused.

Listing (what `datasets.load_dataset` of a repo id asks, through `HfFileSystem`, after `repo_info`):
`GET /api/{models|datasets|spaces}/{repo_id}/tree/{revision}[/{path}]?recursive=...&expand=...`, a
JSON list of `{type: file|directory, path, size, oid}` (one page: no `Link` header; a path that is no
folder is `EntryNotFound`), and `POST .../paths-info/{revision}` with the form field `paths` (repeated),
the entries of the paths that exist. `datasets` (5.2) also asks for `{name}.py`, `README.md` and
`.huggingface.yaml` at the commit, which a repo may lack.

`serve_hub` answers those requests from local files on 127.0.0.1, on an ephemeral port, so that
downloads work offline through `endpoint=` or the `HF_ENDPOINT` environment variable. One server
holds repos of any types side by side (a training run downloads a dataset and a model): the URL
prefix picks the type, as on the Hub. Committed files are kept in memory; each commit gives its repo
a new hash (`FakeHub.commits`), and downloads serve the latest commit only.

Named revisions (a branch, a tag, a pull request's `refs/pr/4`) are repos of their own in `files`, with
the repo id `{repo_id}@{revision}`: asked for `revision` of `repo_id` (in the URL, quoted as
`refs%2Fpr%2F4`), the server answers from that repo, at that name or at its own commit hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

_URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/", "kernel": "kernels/"}
_RESOLVE_PATH = re.compile(r"/(?P<repo>.+?)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)")
_INFO_PATH = re.compile(
    r"/api/(?P<kind>models|datasets|spaces)/(?P<repo_id>[^/]+(?:/[^/]+)?)(?:/revision/(?P<revision>[^/]+))?"
)
_UPLOAD_PATH = re.compile(
    r"/api/(?P<kind>models|datasets|spaces)/(?P<repo_id>[^/]+/[^/]+)/(?P<action>preupload|commit)/(?P<revision>[^/]+)"
)
# HfApi.list_repo_tree (GET) and HfApi.get_paths_info (POST): what HfFileSystem, and so `datasets`, lists
_TREE_PATH = re.compile(
    r"/api/(?P<kind>models|datasets|spaces)/(?P<repo_id>[^/]+/[^/]+)/(?P<action>tree|paths-info)/(?P<revision>[^/]+)"
    r"(?:/(?P<path>.*))?"
)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_FRONT_MATTER = re.compile(r"\s*---\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", re.S)


@dataclass
class FakeHub:
    """What `serve_hub` yields: the endpoint URL, each repo's commit hash, and the requests served."""

    url: str
    commits: dict[str, str]
    requests: list[tuple[str, str]] = field(default_factory=list)
    user: str = "user"  # the namespace of a repo created without an organization
    # answers the Hub gives instead of a repo's files (downloads and repo info): repo id -> a status every
    # request of it gets (401: RepoNotFound, as the Hub answers an unauthenticated client for a private
    # repo; 403: GatedRepo; other codes plain), or `flaky`: repo id -> how many requests get 503 first
    refuse: dict[str, int] = field(default_factory=dict)
    flaky: dict[str, int] = field(default_factory=dict)


def _first_commit(kind: str, repo_id: str) -> str:
    """A repo's commit hash before anything is committed to it (served repos, created repos)."""
    return hashlib.sha1(f"{kind}/{repo_id}".encode()).hexdigest()


def _git_oid(data: bytes) -> str:
    """The git blob SHA-1 of `data`: what the client compares to skip unchanged regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _HubServer(ThreadingHTTPServer):
    def __init__(self, files: Mapping[tuple[str, ...], Path], repo_type: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        # {(repo_type, repo_id, filename): path, or the bytes of a committed file};
        # a 2-tuple key is a repo of the default type
        self.files: dict[tuple[str, str, str], Path | bytes] = {
            key if len(key) == 3 else (repo_type, *key): path for key, path in files.items()
        }
        repos = {(kind, repo_id) for kind, repo_id, _ in self.files}
        if len({repo_id for _, repo_id in repos}) < len(repos):
            raise ValueError("one repo id served as two repo types: FakeHub.commits is keyed by repo id")
        commits = {repo_id: _first_commit(kind, repo_id) for kind, repo_id in repos}
        self.repo_types = {repo_id: kind for kind, repo_id in repos}
        self.etags: dict[Path, str] = {}  # hashed once per file: a checkpoint is hundreds of MB
        self.lock = threading.Lock()  # commits change repos while other threads serve them
        self.hub = FakeHub(url=f"http://127.0.0.1:{self.server_address[1]}", commits=commits)

    def find_repo(self, url_repo: str) -> tuple[str, str]:
        """(repo_type, repo_id) of a repo path in a URL: "datasets/a/b" -> ("dataset", "a/b")."""
        for kind, prefix in _URL_PREFIXES.items():
            if prefix and url_repo.startswith(prefix):
                return kind, url_repo[len(prefix) :]
        return "model", url_repo

    def served_repo(self, repo_id: str, revision: str) -> str | None:
        """The repo id that serves `revision` of `repo_id`: itself at "main" or its commit hash, or
        `{repo_id}@{revision}` (see the module's docstring); None when there is no such revision."""
        if revision in ("main", self.hub.commits[repo_id]):
            return repo_id
        for name in self.repo_types:
            if name.startswith(repo_id + "@") and revision in (name.split("@", 1)[1], self.hub.commits[name]):
                return name
        return None

    def repo_files(self, repo_type: str, repo_id: str) -> dict[str, Path | bytes]:
        return {name: value for (kind, repo, name), value in self.files.items() if (kind, repo) == (repo_type, repo_id)}

    def web_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.hub.url}/{_URL_PREFIXES[repo_type]}{repo_id}"


class _Handler(BaseHTTPRequestHandler):
    server: _HubServer

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet; `FakeHub.requests` records the traffic instead."""

    def _refused(self, url_path: str) -> bool:
        """Answer with FakeHub.refuse's or FakeHub.flaky's status where one applies to this request's repo."""
        hub = self.server.hub
        repo_id = next((r for r in {*hub.refuse, *hub.flaky} if f"/{r}/" in url_path + "/"), None)
        if repo_id is None:
            return False
        with self.server.lock:
            if hub.flaky.get(repo_id, 0) > 0:
                hub.flaky[repo_id] -= 1
                status = 503
            else:
                status = hub.refuse.get(repo_id)
        if status is None:
            return False
        self.send_response(status)
        code = {401: "RepoNotFound", 403: "GatedRepo"}.get(status)
        if code is not None:
            self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def _serve(self, send_body: bool) -> None:
        hub = self.server.hub
        hub.requests.append((self.command, self.path))
        url_path = urlsplit(self.path).path
        if self._refused(url_path):
            return
        tree = _TREE_PATH.fullmatch(url_path)
        if tree is not None and tree["action"] == "tree":
            recursive = "recursive=true" in urlsplit(self.path).query.lower()
            return self._tree(tree["kind"][:-1], unquote(tree["repo_id"]), unquote(tree["revision"]),
                              unquote(tree["path"] or ""), recursive)
        info = _INFO_PATH.fullmatch(url_path)
        if info is not None:
            return self._repo_info(info["kind"][:-1], unquote(info["repo_id"]), unquote(info["revision"] or "main"))
        match = _RESOLVE_PATH.fullmatch(url_path)
        if match is None:  # e.g. GET /api/agent-harnesses, which the client tolerates failing
            return self._error(None)
        repo_type, repo_id = self.server.find_repo(match["repo"])
        with self.server.lock:
            if self.server.repo_types.get(repo_id) != repo_type:
                return self._error("RepoNotFound")
            served = self.server.served_repo(repo_id, unquote(match["revision"]))
            if served is None:
                return self._error("RevisionNotFound")
            repo_id, commit = served, hub.commits[served]
            stored = self.server.files.get((repo_type, repo_id, unquote(match["filename"])))
        if stored is None:
            return self._error("EntryNotFound", commit)

        data = stored.read_bytes() if isinstance(stored, Path) else stored
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
        if isinstance(stored, Path):
            etags = self.server.etags
            etag = etags.get(stored) or etags.setdefault(stored, hashlib.sha256(data).hexdigest())
        else:  # a committed file: the Hub's ETag of a regular (non-LFS) file
            etag = _git_oid(data)
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
        with self.server.lock:
            if self.server.repo_types.get(repo_id) != repo_type:
                return self._error("RepoNotFound")
            served = self.server.served_repo(repo_id, revision)
            if served is None:
                return self._error("RevisionNotFound")
            commit = self.server.hub.commits[served]
            files = sorted(self.server.repo_files(repo_type, served))
        self._json(200, {
            "id": repo_id, "sha": commit, "private": False, "gated": False, "disabled": False,
            "siblings": [{"rfilename": name} for name in files],
        })

    def _entries(self, repo_type: str, repo_id: str, revision: str) -> dict[str, dict[str, Any]] | str:
        """Every file and folder of a revision as the tree API describes it, by path; or an error code."""
        with self.server.lock:
            if self.server.repo_types.get(repo_id) != repo_type:
                return "RepoNotFound"
            served = self.server.served_repo(repo_id, revision)
            if served is None:
                return "RevisionNotFound"
            files = self.server.repo_files(repo_type, served)
        entries: dict[str, dict[str, Any]] = {}
        for name, stored in files.items():
            data = stored.read_bytes() if isinstance(stored, Path) else stored
            entries[name] = {"type": "file", "path": name, "size": len(data), "oid": _git_oid(data)}
            parts = name.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth])
                entries.setdefault(folder, {"type": "directory", "path": folder, "size": 0,
                                            "oid": hashlib.sha1(folder.encode()).hexdigest()})
        return entries

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str, recursive: bool) -> None:
        """`GET /api/{kind}/{repo}/tree/{revision}[/{path}]`: the entries under `path` (one page, no `Link`
        header); a path that is not a folder is `EntryNotFound`, as on the Hub."""
        entries = self._entries(repo_type, repo_id, revision)
        if isinstance(entries, str):
            return self._error(entries)
        path = path.strip("/")
        if path and entries.get(path, {}).get("type") != "directory":
            return self._error("EntryNotFound")
        prefix = f"{path}/" if path else ""
        under = [e for name, e in sorted(entries.items()) if name.startswith(prefix)
                 and (recursive or "/" not in name[len(prefix):])]
        self._json(200, under)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str, paths: list[str]) -> None:
        """`POST /api/{kind}/{repo}/paths-info/{revision}` (form `paths`): the entries of those that exist."""
        entries = self._entries(repo_type, repo_id, revision)
        if isinstance(entries, str):
            return self._error(entries)
        self._json(200, [entries[p.strip("/")] for p in paths if p.strip("/") in entries])

    def do_POST(self) -> None:
        self.server.hub.requests.append((self.command, self.path))
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        url = urlsplit(self.path)
        tree = _TREE_PATH.fullmatch(url.path)
        if tree is not None and tree["action"] == "paths-info":
            form = parse_qs(body.decode())
            return self._paths_info(tree["kind"][:-1], unquote(tree["repo_id"]), unquote(tree["revision"]),
                                    form.get("paths", []))
        if url.path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body)["content"])
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            return self._json(401, {"error": "Invalid username or password."})
        if url.path == "/api/repos/create":
            return self._create_repo(json.loads(body))
        match = _UPLOAD_PATH.fullmatch(url.path)
        if match is None:
            return self._error(None)
        repo_type, repo_id = match["kind"][:-1], unquote(match["repo_id"])
        if self.server.repo_types.get(repo_id) != repo_type:
            return self._error("RepoNotFound")
        if unquote(match["revision"]) != "main":
            return self._error("RevisionNotFound")
        if "create_pr" in url.query:
            return self._json(400, {"error": "fake hub: pull requests are not supported"})
        if match["action"] == "preupload":
            return self._preupload(repo_type, repo_id, json.loads(body)["files"])
        return self._commit(repo_type, repo_id, [json.loads(line) for line in body.splitlines() if line.strip()])

    def _validate_yaml(self, content: str) -> None:
        front = _FRONT_MATTER.match(content)
        try:
            metadata = yaml.safe_load(front[1]) if front else {}
        except yaml.YAMLError as err:
            return self._json(400, {"errors": [{"message": f"invalid YAML: {err}"}], "warnings": []})
        if not isinstance(metadata, dict | None):
            return self._json(400, {"errors": [{"message": "metadata must be a YAML mapping"}], "warnings": []})
        self._json(200, {"errors": [], "warnings": []})

    def _create_repo(self, request: dict[str, Any]) -> None:
        hub, kind = self.server.hub, request.get("type") or "model"
        repo_id = f"{request.get('organization') or hub.user}/{request['name']}"
        url = self.server.web_url(kind, repo_id)
        with self.server.lock:
            if repo_id in self.server.repo_types:
                # as the Hub: 409 and the repo's URL; one repo id as two types is refused here (see __init__)
                same = self.server.repo_types[repo_id] == kind
                return self._json(409 if same else 400, {"error": "You already created this repo", "url": url})
            self.server.repo_types[repo_id] = kind
            hub.commits[repo_id] = _first_commit(kind, repo_id)
        self._json(200, {"url": url, "name": repo_id})

    def _preupload(self, repo_type: str, repo_id: str, files: list[dict[str, Any]]) -> None:
        with self.server.lock:
            stored = self.server.repo_files(repo_type, repo_id)
        oids = {name: _git_oid(v.read_bytes() if isinstance(v, Path) else v) for name, v in stored.items()}
        self._json(200, {"files": [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": oids.get(f["path"])}
            for f in files
        ]})

    def _commit(self, repo_type: str, repo_id: str, lines: list[dict[str, Any]]) -> None:
        hub = self.server.hub
        if not lines or lines[0]["key"] != "header":
            return self._json(400, {"error": "a commit starts with its header line"})
        with self.server.lock:
            parent = hub.commits[repo_id]
            if not parent.startswith(lines[0]["value"].get("parentCommit") or ""):
                return self._json(412, {"error": "A commit has happened since. Please refresh and try again."})
            files = self.server.repo_files(repo_type, repo_id)
            for line in lines[1:]:
                key, path = line["key"], line["value"]["path"]
                if key == "file":
                    files[path] = base64.b64decode(line["value"]["content"])
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        return self._error("EntryNotFound", parent, "A file with this name doesn't exist")
                elif key == "deletedFolder":
                    folder = path.rstrip("/") + "/"
                    files = {name: value for name, value in files.items() if not name.startswith(folder)}
                else:  # lfsFile: never asked for, as preupload answers "regular"
                    return self._json(400, {"error": f"fake hub: {key} lines are not supported"})
            for name in self.server.repo_files(repo_type, repo_id):
                del self.server.files[(repo_type, repo_id, name)]
            self.server.files.update({(repo_type, repo_id, name): value for name, value in files.items()})
            commit = hashlib.sha1(parent.encode() + json.dumps(lines).encode()).hexdigest()
            hub.commits[repo_id] = commit
        self._json(200, {"success": True, "commitOid": commit, "pullRequestUrl": None,
                         "commitUrl": f"{self.server.web_url(repo_type, repo_id)}/commit/{commit}"})

    def _json(self, status: int, content: dict[str, Any]) -> None:
        body = json.dumps(content).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, code: str | None, commit: str | None = None, message: str | None = None) -> None:
        self.send_response(404)
        if code is not None:
            self.send_header("X-Error-Code", code)
        if commit is not None:
            self.send_header("X-Repo-Commit", commit)
        if message is not None:
            self.send_header("X-Error-Message", message)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def serve_hub(files: Mapping[tuple[str, ...], Path], repo_type: str = "dataset") -> Iterator[FakeHub]:
    """Serve `files` as a fake Hub; yield its `FakeHub` handle.

    Keys are `(repo_id, filename)` for a repo of type `repo_type`, or `(repo_type, repo_id, filename)`
    to mix types on one server: `{("dataset", "a/videos", "x.tar.gz"): p, ("model", "a/net", "config.json"): q}`.
    Every repo answers at revision "main" and at its commit hash `FakeHub.commits[repo_id]`. Each
    request is appended to `FakeHub.requests` as (method, raw request path). Repos created and
    commits made through the upload endpoints live as long as the server.
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
