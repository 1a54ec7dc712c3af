"""Where the page's stream reads may connect: on a page open to a network, the public internet only.

The live tab's stream URL is read by the server (FFmpeg, through PyAV), so without a check anyone who can
open a public page could make the server connect to itself, to its private network or to a cloud metadata
address, and learn from the answers what listens there (server-side request forgery, OWASP API7).

`StreamTargets(allow_private=False)`, the page's mode beyond loopback:
- a stream URL must be http(s)://; its host is resolved and every address it resolves to is classified by
  Python's `ipaddress` (IPv4-mapped, 6to4 and Teredo IPv6 addresses by the IPv4 address inside them); a
  loopback, private, link-local, multicast, reserved, unspecified or otherwise non-global address is
  refused in one line before any connection is made. Numeric forms (2130706433, 0x7f.1, 127.1) resolve
  as the C library resolves them, which is how FFmpeg would have read them.
- FFmpeg then reaches the stream only through a `Gate` of its own, an HTTP proxy on loopback that
  resolves each name once, checks every address and connects to one it checked: the first request, every
  redirect FFmpeg follows and every segment of an HLS or DASH playlist pass the same check, and no second
  lookup stands between check and use.
- rtsp(s):// and rtmp(s):// are refused in this mode: an RTSP server can redirect FFmpeg where no proxy
  sees it, and neither protocol goes through an HTTP proxy.
`StreamTargets(allow_private=True)` (a page on loopback, or `app.py --allow-private-streams`): every scheme
the live tab reads, any address, FFmpeg connecting directly, as on a user's own machine with an IP camera
on the home network.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import selectors
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..core.errors import DecodeError, UserError

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https")
PUBLIC_SCHEMES = ("http", "https")
# what FFmpeg may open for a stream URL: no file, pipe or data; HLS and DASH playlists fetch over these
STREAM_PROTOCOLS = "rtsp,rtsps,rtmp,rtmps,rtmpt,http,https,tcp,tls,udp,rtp,srtp,crypto,hls,httpproxy"
# through the gate: http(s) over TCP to the gate itself (CONNECT for https); no udp, rtp or rtsp
PUBLIC_PROTOCOLS = "http,https,tcp,tls,crypto,hls,httpproxy"
CONNECT_TIMEOUT_S = 10.0  # the gate's connection to a stream's host
IDLE_TIMEOUT_S = 60.0  # a connection through the gate with no byte either way this long is closed
HEAD_LIMIT = 16384  # bytes of a request's head the gate reads at most (FFmpeg's are a few hundred)
NO_PROXY = ("no_proxy", "NO_PROXY")  # FFmpeg connects directly to the hosts these name, past the gate

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


def resolve_all(host: str, port: int) -> list[str]:
    """Every address `host` resolves to for a TCP connection (the C library's getaddrinfo, as FFmpeg's)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise UserError(f"stream host {host} does not resolve ({err}): check the address") from None
    return list(dict.fromkeys(info[4][0] for info in found))


def refused_address(address: Address) -> str | None:
    """Why a stream may not connect to `address` from a public page (e.g. "a loopback address"); None
    where it is a global unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if inner is not None:
            return refused_address(inner)
    for kind in ("loopback", "unspecified", "link_local", "private", "multicast", "reserved"):
        if getattr(address, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    return None if address.is_global else "not a public address"


class RefusedTarget(UserError):
    """A stream host the page may not connect to: `named` (the host, with the address where they differ) and
    `why` ("a private address")."""

    ONLY = ("this page reads streams from public addresses only (serve it on 127.0.0.1, or with "
            "--allow-private-streams, to read others)")

    def __init__(self, named: str, why: str, led: bool = False):
        self.named, self.why = named, why
        said = f"a redirect or playlist entry led to {named}, {why}" if led else f"stream host {named} is {why}"
        super().__init__(f"{said}: {self.ONLY}")


@dataclass
class StreamTargets:
    """What the page's stream reads may reach; `resolve` and `refusal` are the name lookup and the address
    rules (tests pass their own, since only loopback exists where they run)."""

    allow_private: bool = False
    resolve: Resolver = resolve_all
    refusal: Callable[[Address], str | None] = refused_address

    def describe(self) -> str:
        return ("streams from any address (private ones too)" if self.allow_private
                else "streams over http(s) from public addresses only")

    def check(self, host: str, port: int) -> str:
        """The address to connect to for `host`: every address it resolves to must be allowed."""
        addresses = self.resolve(host, port)
        if not addresses:
            raise UserError(f"stream host {host} resolves to no address: check the address")
        for text in addresses:
            why = self.refusal(ipaddress.ip_address(text.split("%")[0]))
            if why:
                raise RefusedTarget(host if host == text else f"{host} ({text})", why)
        return addresses[0]

    @contextlib.contextmanager
    def reading(self, url: str) -> Iterator[dict[str, str]]:
        """FFmpeg's options for reading `url` (checked first, in one line) while the block runs; where a
        read through the gate fails after the gate refused a target, the error names that refusal."""
        url = check_stream_url(url)
        if self.allow_private:
            yield {"protocol_whitelist": STREAM_PROTOCOLS}
            return
        parts = urlsplit(url)
        if parts.scheme.lower() not in PUBLIC_SCHEMES:
            raise UserError(f"stream URL {url}: this page reads http(s):// streams only (rtsp and rtmp can "
                            "redirect where its address check cannot follow); serve it on 127.0.0.1, or with "
                            "--allow-private-streams, to read them")
        self.check(parts.hostname or "", port_of(parts))
        for name in NO_PROXY:  # FFmpeg would connect past the gate to what these name, a redirect's target too
            os.environ.pop(name, None)
        gate = Gate(self)
        try:
            yield {"protocol_whitelist": PUBLIC_PROTOCOLS, "http_proxy": gate.url}
        except (UserError, DecodeError) as err:
            if gate.refused:
                raise UserError(f"stream URL {url}: {gate.refused[0]}") from None
            raise err
        finally:
            gate.close()


def check_stream_url(url: str) -> str:
    """The URL, stripped, where its scheme is one a stream comes by; a one-line UserError otherwise."""
    url = (url or "").strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme not in STREAM_SCHEMES or not urlsplit(url).netloc:
        raise UserError(f"stream URL {url or '(empty)'}: give an address starting with "
                        f"{', '.join(s + '://' for s in STREAM_SCHEMES)} (the page reads no files of the server's)")
    return url


def port_of(parts: Any) -> int:
    try:
        return parts.port or (443 if parts.scheme.lower() == "https" else 80)  # only http(s) is read through the gate
    except ValueError:
        raise UserError(f"stream URL {parts.geturl()}: its port is not a number from 1 to 65535") from None


@dataclass
class Gate:
    """An HTTP proxy on loopback for one stream read: each request (CONNECT host:port for https, an absolute
    http:// URL otherwise) is checked by `targets`, sent to the address checked, then its bytes are passed
    both ways until either side closes. A refused one gets 403, and its reason is kept in `refused`."""

    targets: StreamTargets
    refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.closed = False
        threading.Thread(target=self._accept, name="stream-gate", daemon=True).start()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name="stream-gate-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(IDLE_TIMEOUT_S)
            try:
                head = read_head(client)
                method, target, version, headers, rest = parse_head(head)
                host, port, first = self._route(method, target, version, headers)
                address = self.targets.check(host, port)
            except RefusedTarget as err:
                self.refused.append(str(RefusedTarget(err.named, err.why, led=True)))
                with contextlib.suppress(OSError):
                    client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            except UserError as err:
                self.refused.append(str(err))
                with contextlib.suppress(OSError):
                    client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            except (OSError, ValueError):
                return
            try:
                upstream = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_S)
            except OSError:
                with contextlib.suppress(OSError):
                    client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            with upstream:
                if method == "CONNECT":
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if first + rest:
                    upstream.sendall(first + rest)
                relay(client, upstream)

    @staticmethod
    def _route(method: str, target: str, version: str, headers: list[str]) -> tuple[str, int, bytes]:
        """(host, port, the bytes to send it first) for a request to the gate."""
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(target)
            return host.strip("[]"), int(port), b""
        parts = urlsplit(target)
        if parts.scheme.lower() != "http" or not parts.hostname:
            raise UserError(f"a redirect or playlist entry led to {target}, not an http(s):// address")
        path = parts.path or "/"
        kept = [h for h in headers if h.split(":", 1)[0].strip().lower() not in ("connection", "proxy-connection")]
        request = "\r\n".join([f"{method} {path}{'?' + parts.query if parts.query else ''} {version}", *kept,
                               "Connection: close", "", ""])
        return parts.hostname, port_of(parts), request.encode("latin-1")


def read_head(conn: socket.socket) -> bytes:
    """A request's head, up to its blank line (HEAD_LIMIT bytes at most)."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk or len(head) > HEAD_LIMIT:
            raise ValueError("no request head")
        head += chunk
    return head


def parse_head(head: bytes) -> tuple[str, str, str, list[str], bytes]:
    """(method, target, version, header lines, the bytes read past the head)."""
    text, rest = head.split(b"\r\n\r\n", 1)
    lines = text.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    return method.upper(), target, version, lines[1:], rest


def relay(a: socket.socket, b: socket.socket) -> None:
    """Pass bytes both ways until either side closes or both are idle IDLE_TIMEOUT_S."""
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while True:
            ready = selector.select(IDLE_TIMEOUT_S)
            if not ready:
                return
            for key, _ in ready:
                try:
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return
