"""The web page under several clients at once, on loopback: answers, latency, the server's memory, its files.

    python bench/page_load.py [--model runs/demo] [--config configs/demo.yaml] [--clients 4] [--requests 5]
                              [--slots 1,2] [--keep 5]

Serves the page (app.py's build_page and serve) in a child process on a free loopback port, once per
--slots value (answers run at once), with its own GRADIO_TEMP_DIR and files kept --keep seconds. In each:
one client alone sends --requests uploads of test videos one after another (the baseline), then --clients
clients (gradio_client, one thread each) send --requests each at once; then 3 x QUEUE_SIZE requests at
once, to see the queue's bound refuse the overflow; then the --clients clients again while one more visitor
uploads a video of the longest duration the page allows (MAX_UPLOAD_MINUTES, written at the demo's size)
and asks for its timeline, as the page's browser does. Every answer's status line is compared with infer.py's
(--json) for that video. Prints per phase: requests, wrong answers, refused, latency median and p95 (upload
to answer), answers per second, the server's RSS after the phase, and the files (and folders) in its
temporary folder after the phase and after twice (--keep + the sweep period): a file goes once it is
--keep old, the folder it leaves empty --keep after that. Needs the demo model
(`make demo`). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
from machine import cpu_name  # noqa: E402  (bench/machine.py)

from video_classifier.core.config import load_config  # noqa: E402
from video_classifier.data.manifest import load_prepared  # noqa: E402
from video_classifier.serve.bounds import MAX_UPLOAD_MINUTES  # noqa: E402
from video_classifier.serve.web import QUEUE_SIZE  # noqa: E402

SWEEP_S = 2  # gradio's delete_cache period in the bench: the page's default is minutes
LONG: list = []  # the long visitor's (labels s, timeline s, status, timeline note), one per slots value
CHILD = """
import sys
sys.path.insert(0, {repo!r})
from video_classifier.core.config import load_config
from video_classifier.serve.web import build_page, load_demo, serve
demo = load_demo({model!r}, load_config({config!r}))
serve(build_page(demo, [], keep_s={keep}, sweep_s={sweep}, slots={slots}), "127.0.0.1", {port})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def expected_status(model: str, config: str, videos: list[Path]) -> dict[str, str]:
    """infer.py --json's answer for each video, as the page's status line writes it."""
    run = subprocess.run([sys.executable, str(REPO / "infer.py"), "--model", model, "--config", config, "--json",
                          *map(str, videos)], capture_output=True, text=True, check=True)
    return {Path(p["video"]).name: f"{Path(p['video']).name} ({p['views']}): " + ", ".join(
        f"{label} {score:.4f}" for label, score in zip(p["labels"], p["scores"])) for p in json.loads(run.stdout)}


def start_page(args: argparse.Namespace, slots: int, temp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    code = CHILD.format(repo=str(REPO), model=args.model, config=args.config, keep=args.keep, sweep=SWEEP_S,
                        slots=slots, port=port)
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "GRADIO_TEMP_DIR": str(temp)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        time.sleep(0.5)
        if child.poll() is not None:
            raise SystemExit(f"the page did not start: {child.stderr.read()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return child, url
        except OSError:
            continue
    raise SystemExit("the page did not start in 300 s")


def send(url: str, videos: list[Path], n: int, offset: int, results: list, barrier: threading.Barrier) -> None:
    """One client: `n` uploads one after another; each (latency s, status line or None, error or None)."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False)
    barrier.wait()
    for i in range(n):
        video = videos[(offset + i) % len(videos)]
        started = time.perf_counter()
        try:
            outputs = client.predict(handle_file(str(video)), api_name="/answer")
            results.append((time.perf_counter() - started, video.name, outputs[2], None))
        except Exception as err:  # gradio_client's errors vary by version: counted, first one shown
            results.append((time.perf_counter() - started, video.name, None, f"{type(err).__name__}: {err}"))


def longest_upload(path: Path, minutes: float = MAX_UPLOAD_MINUTES) -> Path:
    """A `minutes`-long 128x96 25-fps MPEG-4 video of a texture panning right (the demo's size), written once."""
    import av
    import numpy as np

    if path.is_file():
        return path
    texture = np.random.default_rng(0).integers(0, 255, (96, 256, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = 128, 96, "yuv420p", 150_000
        for i in range(int(minutes * 60 * 25)):
            x = (2 * i) % 128
            frame = np.ascontiguousarray(texture[:, x:x + 128])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def long_visitor(url: str, video: Path, out: list, barrier: threading.Barrier) -> None:
    """One visitor's long upload: its labels, then its timeline (the page's second event); (seconds, line)."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False)
    barrier.wait()
    started = time.perf_counter()
    status = client.predict(handle_file(str(video)), api_name="/answer")[2]
    labelled = time.perf_counter() - started
    note = client.predict(handle_file(str(video)), status, api_name="/timeline")[2]
    out.append((labelled, time.perf_counter() - started, status, note))


def phase(url: str, videos: list[Path], clients: int, requests: int, long: Path | None = None) -> tuple[list, float]:
    results: list = []
    barrier = threading.Barrier(clients + (long is not None))
    threads = [threading.Thread(target=send, args=(url, videos, requests, c * requests, results, barrier))
               for c in range(clients)]
    if long is not None:
        threads.append(threading.Thread(target=long_visitor, args=(url, long, LONG, barrier)))
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - started


def files_in(folder: Path) -> tuple[int, int]:
    paths = list(folder.rglob("*"))
    return sum(p.is_file() for p in paths), sum(p.is_dir() for p in paths)


def row(name: str, slots: int, results: list, wall: float, expected: dict, server: psutil.Process,
        temp: Path, keep: float) -> str:
    answered = [r for r in results if r[2] is not None]
    wrong = sum(r[2] != expected[r[1]] for r in answered)
    errors = [r[3] for r in results if r[3]]
    times = sorted(r[0] for r in answered) or [float("nan")]
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    rss = server.memory_info().rss / 2**20
    files, folders = files_in(temp)
    time.sleep(2 * (keep + SWEEP_S))  # a file goes after keep (+ a sweep), its emptied folder keep after that
    later, later_folders = files_in(temp)
    note = f" ({errors[0][:70]})" if errors else ""
    return (f"| {name} | {slots} | {len(results)} | {wrong} | {len(errors)}{note} | "
            f"{statistics.median(times) * 1000:.0f} | {p95 * 1000:.0f} | {len(answered) / wall:.1f} | {rss:.0f} | "
            f"{files} ({folders}) | {later} ({later_folders}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/demo")
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=5, help="per client")
    parser.add_argument("--slots", default="1,2", help="answers at once, one server per value")
    parser.add_argument("--keep", type=int, default=5, help="seconds the page keeps its files")
    args = parser.parse_args()
    config = load_config(args.config)
    _, records = load_prepared(config.data.root)
    videos = [Path(config.data.root) / r.path for r in records if r.split == "test"][:8]
    expected = expected_status(args.model, args.config, videos)
    cpu = cpu_name()
    print(f"{cpu}, {len(os.sched_getaffinity(0))} cores; {args.model}; {len(videos)} test videos; files kept "
          f"{args.keep} s, swept every {SWEEP_S} s")
    print("| phase | slots | requests | wrong | refused | median ms | p95 ms | answers/s | server RSS MB "
          "| files (folders) after | after 2 x (keep + sweep) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    long = longest_upload(Path(tempfile.gettempdir()) / f"page-load-{MAX_UPLOAD_MINUTES:g}min.avi")
    for slots in map(int, args.slots.split(",")):
        with tempfile.TemporaryDirectory(prefix="page-load-") as temp:
            child, url = start_page(args, slots, Path(temp))
            try:
                server = psutil.Process(child.pid)
                phase(url, videos, 1, 2)  # warm-up: the first answers load lazy imports
                print(f"| (started, warmed up) | {slots} | 2 | | | | | | {server.memory_info().rss / 2**20:.0f} "
                      f"| {'%d (%d)' % files_in(Path(temp))} | |")
                for name, clients, requests in [("one client (baseline)", 1, args.requests),
                                                (f"{args.clients} clients at once", args.clients, args.requests),
                                                (f"{3 * QUEUE_SIZE} at once (queue {QUEUE_SIZE})", 3 * QUEUE_SIZE, 1)]:
                    results, wall = phase(url, videos, clients, requests)
                    print(row(name, slots, results, wall, expected, server, Path(temp), args.keep), flush=True)
                results, wall = phase(url, videos, args.clients, args.requests, long)
                print(row(f"{args.clients} clients at once, one more uploading {MAX_UPLOAD_MINUTES:g} min", slots,
                          results, wall, expected, server, Path(temp), args.keep), flush=True)
            finally:
                child.terminate()
                child.wait(timeout=30)
    for slots, (labelled, whole, status, note) in zip(map(int, args.slots.split(",")), LONG):
        print(f"slots {slots}: the {MAX_UPLOAD_MINUTES:g}-min upload's labels in {labelled:.1f} s, its timeline by "
              f"{whole:.1f} s ({status[:60]}{'; ' + note if note else ''})")


if __name__ == "__main__":
    main()
