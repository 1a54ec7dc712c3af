"""A local HTTP server for a folder, answering byte ranges as CDNs and object stores do, and counting the
bytes it sends (what a reader of remote files costs)."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass
class FileServer:
    url: str  # http://127.0.0.1:<port>
    sent: Counter = field(default_factory=Counter)  # file name -> body bytes sent
    requests: Counter = field(default_factory=Counter)  # file name -> GET requests
    seen: list = field(default_factory=list)  # every request's path, answered or not
    redirects: dict = field(default_factory=dict)  # file name -> the URL a request for it is sent to (302)


class _Handler(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self, body: bool) -> None:
        name = unquote(urlsplit(self.path).path).lstrip("/")
        self.server.state.seen.append(self.path)
        if name in self.server.state.redirects:
            self.send_response(302)
            self.send_header("Location", self.server.state.redirects[name])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = (self.server.folder / name).resolve()
        if self.server.folder not in path.parents or not path.is_file():
            self.send_error(404)
            return
        size = path.stat().st_size
        start, end, status = 0, size - 1, 200
        match = _RANGE.fullmatch(self.headers.get("Range", ""))
        if match and (match[1] or match[2]):
            if match[1]:
                start, end = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
            else:  # the last N bytes
                start = max(size - int(match[2]), 0)
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if body:
            self.server.state.requests[name] += 1
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read(end - start + 1)
            self.server.state.sent[name] += len(data)
            self.wfile.write(data)


@contextmanager
def serve_folder(folder: Path, host: str = "127.0.0.1", tls: tuple[Path, Path] | None = None) -> Iterator[FileServer]:
    """`folder` over HTTP on `host` (a loopback address; an ephemeral port) while the block runs; over HTTPS
    with `tls`, (certificate, key) files."""
    server = ThreadingHTTPServer((host, 0), _Handler)
    if tls:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*map(str, tls))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.folder = Path(folder).resolve()
    server.state = FileServer(f"{'https' if tls else 'http'}://{host}:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.state
    finally:
        server.shutdown()
        server.server_close()
