"""What a public page's live tab may connect to (serve/stream_targets.py): loopback, private and other
non-public addresses refused in one line before any connection, in every spelling; redirects and playlist
entries checked by the page's gate; everything allowed on a page served on loopback.

Only loopback exists where the tests run, so a second loopback address, 127.0.0.2, stands for the public
internet: the tests' address rules are the page's with that one address counted as public (`AS_PUBLIC`),
and a server there redirects, or lists playlist segments, to the server on 127.0.0.1 that must see no request."""

from __future__ import annotations

import ipaddress

import pytest
import videos
from http_files import serve_folder
from videos import write_colours

from video_classifier.core.config import load_config
from video_classifier.core.errors import UserError
from video_classifier.serve.inference import load_model
from video_classifier.serve.live_page import LiveSources
from video_classifier.serve.stream_targets import StreamTargets, refused_address
from video_classifier.serve.web import on_loopback

PUBLIC_STAND_IN = "127.0.0.2"


def as_public(address):
    return None if str(address) == PUBLIC_STAND_IN else refused_address(address)


@pytest.fixture(scope="module")
def colours(colour_model):
    config, folder = colour_model
    return load_model(str(folder), load_config(config), "torch")


@pytest.fixture()
def clip(tmp_path):
    write_colours(tmp_path / "v.avi", [("Blue", 20)], seed=1)  # 0.8 s
    return tmp_path


@pytest.mark.parametrize("address, why", [
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("::1", "loopback"), ("0.0.0.0", "unspecified"),
    ("::", "unspecified"), ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.254", "private"),
    ("192.168.1.20", "private"), ("fc00::5", "private"), ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"), ("224.0.0.251", "multicast"), ("ff02::1", "multicast"),
    ("240.0.0.1", "address"), ("100.64.0.1", "not a public"), ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"), ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),  # Teredo, its client 10.0.0.1 (bits inverted)
    ("8.8.8.8", None), ("1.1.1.1", None), ("2606:4700:4700::1111", None), ("::ffff:8.8.8.8", None),
])
def test_address_rules(address, why):
    got = refused_address(ipaddress.ip_address(address))
    assert (got is None) if why is None else (got is not None and why in got), (address, got)


def spellings(port: int) -> list[str]:
    return [f"http://127.0.0.1:{port}/v.avi", f"http://localhost:{port}/v.avi", f"http://[::1]:{port}/v.avi",
            f"http://2130706433:{port}/v.avi", f"http://0x7f.1:{port}/v.avi", f"http://127.1:{port}/v.avi",
            f"http://0177.0.0.1:{port}/v.avi", f"https://[::ffff:127.0.0.1]:{port}/v.avi",
            f"http://camera.example:{port}/v.avi"]


def resolver(host: str, port: int) -> list[str]:
    """The C library's lookup, with one name of the tests' that resolves to 127.0.0.1 (as a rebinding DNS
    name or an /etc/hosts entry would)."""
    from video_classifier.serve.stream_targets import resolve_all

    return ["127.0.0.1"] if host == "camera.example" else resolve_all(host, port)


def test_every_spelling_of_this_machine_is_refused_before_a_connection(colours, clip):
    with serve_folder(clip) as local:
        port = int(local.url.rsplit(":", 1)[1])
        sources = LiveSources(*colours, StreamTargets(resolve=resolver))
        for url in spellings(port):
            ((line, labels),) = list(sources.play_url("visitor", url))
            assert line.startswith("error: stream host ") and "public addresses only" in line, (url, line)
            assert "\n" not in line and labels == {}
            assert sources.sessions == {}  # the slot it took is free again
        assert local.seen == []
        loopback = LiveSources(*colours, StreamTargets(allow_private=True))  # a page served on 127.0.0.1
        line, labels = list(loopback.play_url("visitor", spellings(port)[0], update_every=0.2))[-1]
    assert line.endswith("the stream ended") and list(labels) == ["Blue"], line
    assert set(local.seen) == {"/v.avi"} and loopback.sessions == {}  # FFmpeg may ask again, for a range


def test_a_name_with_one_private_address_among_public_ones_is_refused():
    targets = StreamTargets(resolve=lambda host, port: ["8.8.8.8", "192.168.0.7"])
    with pytest.raises(UserError, match=r"stream host cdn.example \(192.168.0.7\) is a private address"):
        targets.check("cdn.example", 443)
    assert StreamTargets(resolve=lambda host, port: ["8.8.8.8"]).check("cdn.example", 443) == "8.8.8.8"


@pytest.mark.parametrize("url", ["rtsp://example.com/cam", "rtmp://example.com/live"])
def test_rtsp_and_rtmp_are_refused_on_a_public_page(colours, url):
    ((line, _),) = list(LiveSources(*colours).play_url("visitor", url))
    assert line.startswith(f"error: stream URL {url}: this page reads http(s):// streams only"), line


def test_a_public_stream_plays_and_its_redirect_or_playlist_to_this_machine_is_refused(colours, clip, tmp_path):
    """The stand-in public server's video plays through the gate; a redirect to the local server, and an HLS
    playlist whose segment is there, are refused by the gate, and the local server sees no request."""
    public_folder = tmp_path / "public"
    public_folder.mkdir()
    videos.write(public_folder / "v.avi", n=20)
    sources = LiveSources(*colours, StreamTargets(refusal=as_public))
    with serve_folder(clip) as local, serve_folder(public_folder, PUBLIC_STAND_IN) as public:
        public.redirects["moved.avi"] = f"{local.url}/v.avi"
        (public_folder / "list.m3u8").write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{local.url}/v.avi\n"
                                                 "#EXT-X-ENDLIST\n")
        played = list(sources.play_url("visitor", f"{public.url}/v.avi", update_every=0.2))
        assert played[-1][0].endswith("the stream ended"), played[-1]
        for name in ("moved.avi", "list.m3u8"):
            ((line, _),) = [s for s in sources.play_url("visitor", f"{public.url}/{name}") if s[0].startswith("error")]
            assert line.startswith(f"error: stream URL {public.url}/{name}: a redirect or playlist entry led to "
                                   "127.0.0.1, a loopback address"), line
        assert local.seen == [] and sources.sessions == {}
        assert public.seen[:1] == ["/v.avi"] and "/moved.avi" in public.seen and "/list.m3u8" in public.seen


def test_the_page_knows_when_it_listens_on_loopback():
    assert all(on_loopback(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.5"))
    assert not any(on_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "my-server.lan"))
    assert "public addresses only" in StreamTargets().describe()
    assert "private ones too" in StreamTargets(allow_private=True).describe()


def test_the_pages_live_url_api_refuses_this_machine_in_public_mode(colour_model, clip):
    """Through the served page (gradio_client, as the issue's attacker would): its stream sources put in the
    public mode that a page beyond loopback has, since the test's page may listen on loopback only."""
    import socket

    from gradio_client import Client

    from video_classifier.serve.web import build_page, load_demo, serve

    config, folder = colour_model
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page = build_page(load_demo(str(folder), load_config(config)), [])
    serve(page, "127.0.0.1", port, block=False)
    page.live_sources.targets = StreamTargets()  # what serve() gives a page on 0.0.0.0
    try:
        with serve_folder(clip) as local:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
            for url in spellings(int(local.url.rsplit(":", 1)[1]))[:6]:
                line = client.predict(url, api_name="/live_url")[0]
                assert line.startswith("error: stream host ") and "public addresses only" in line, (url, line)
            assert local.seen == [] and page.live_sources.sessions == {}
    finally:
        page.close()


def test_an_https_stream_goes_through_the_gates_tunnel(colours, clip, tmp_path):
    """https:// on the stand-in public address (a self-signed certificate made with the openssl command;
    FFmpeg does not verify certificates by default) plays through the gate's CONNECT tunnel; its redirect to
    this machine is refused."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    f"/CN={PUBLIC_STAND_IN}", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    sources = LiveSources(*colours, StreamTargets(refusal=as_public))
    with serve_folder(clip) as local, serve_folder(clip, PUBLIC_STAND_IN, tls=(cert, key)) as public:
        assert public.url.startswith("https://")
        public.redirects["moved.avi"] = f"{local.url}/v.avi"
        line, labels = list(sources.play_url("visitor", f"{public.url}/v.avi", update_every=0.2))[-1]
        assert line.endswith("the stream ended") and list(labels) == ["Blue"], line
        ((refused, _),) = list(sources.play_url("visitor", f"{public.url}/moved.avi"))
    assert "a redirect or playlist entry led to 127.0.0.1, a loopback address" in refused, refused
    assert "/v.avi" in public.seen and local.seen == []
