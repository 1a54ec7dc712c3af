"""The web page: one trained model (a folder or Hub id; torch or onnxruntime) behind a Gradio page.

A video, uploaded or picked from the run's test split, gets what infer.py prints for it: the labels the
task shows and their scores, from the same views through the same functions (`video_records`,
`ViewDataset`, `video_scores`, `task.shown`: nothing here preprocesses or scores). A video longer than
TIMELINE_CLIPS clips also gets infer.py --timeline's plot and segments, made in a lane of their own so that
other visitors' answers pass a long video's timeline. Each upload and answer is bounded (bounds.py: size,
duration, time; one at a time per visitor). Beside the answer the video plays
(preview.py: a copy the browser plays where it cannot play the original). The model loads once, when the
page is built. A file that is not a video, does not decode or is too large gives one line on the page,
and the server goes on serving. The page is made to run for weeks: what it and gradio write is deleted
KEEP_S after it was written, the queue holds QUEUE_SIZE requests at most, and answer_slots() run at once.
`write_space` writes the folder a Hugging Face Space serves this page from.
"""

# no `from __future__ import annotations`: gradio reads the handlers' `gr.Request` annotations as objects
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported: no calls home

import atexit
import contextlib
import ipaddress
import json
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging as transformers_logging

from ..core.config import Config
from ..core.cpus import usable_cores
from ..core.errors import DecodeError, UserError, first_line
from ..core.hub import from_the_cache, offline, unreachable
from ..core.run_folder import METRICS
from ..data.datasets import ViewDataset
from ..data.decoding import Decoding, announce, choose_decoder
from ..data.manifest import load_prepared
from ..engine.scoring import video_scores
from ..model.model_spec import ModelSpec
from ..model.unknown import UNKNOWN
from .bounds import Deadline, Limits, OnePerVisitor, minutes
from .inference import answered_unknown, load_model, video_records
from .live_page import LiveSources, live_tab
from .preview import preview
from .stream_targets import StreamTargets
from .timeline import SWITCH_COST, timeline, write_timeline

TIMELINE_CLIPS = 4  # a video at least this many clips long is long enough for a timeline to say more
# timelines made at once, in their own lane beside the answers: a long upload's timeline holds one lane
# while other visitors' labels go on being answered in the answer slots
TIMELINE_SLOTS = 1
EXAMPLES = 12  # test videos offered on the page at most, one per class first
# Uploads, previews and timelines are deleted this long after they were written: long enough to watch a
# preview and read its timeline (the browser fetches the video from the server while it plays), short
# enough that a page open for weeks keeps about an hour of uploads on disk.
KEEP_S = 3600
SWEEP_S = 600  # gradio looks for files older than KEEP_S this often
# Requests waiting at most: 16 answers of the demo model are ~16 s of waiting on 2 cores, of VideoMAE-B at
# 5x3 views on CPU minutes; a request beyond it is refused at once (gradio: "Queue is full", a toast
# "This application is currently busy. Please try again.") rather than left waiting for ever.
QUEUE_SIZE = 16
GRADIO_HASH = re.compile(r"[0-9a-f]{64}")  # gradio's cache: <sha256 of the file>/<its name>
GRADIO_UPLOAD_PART = re.compile(r"tmp[a-z0-9_]{8}")  # tempfile.NamedTemporaryFile's names

# A click on a row of the segments table plays the video from that segment's start (its first cell), in
# the browser alone: no request to the server, so a busy queue never delays it. The rows are gradio 6's
# ARIA grid (role=row, cells data-col); the header row has no data-col cell and is ignored.
SEEK_JS = """() => document.addEventListener("click", (event) => {
  const row = event.target.closest("#segments [role=row]");
  const video = document.querySelector("#preview video");
  const start = row && parseFloat(row.querySelector("[data-col='0']")?.innerText);
  if (video && Number.isFinite(start)) { video.currentTime = start; }
})"""

REPO = Path(__file__).resolve().parents[2]
# a Space's sdk_version brings gradio; the others test and check the code
REQUIREMENTS_NOT_SERVED = ("gradio", "pytest", "import-linter", "ruff", "selenium")


@dataclass
class Demo:
    """What the page serves, loaded once."""

    model: Any
    spec: ModelSpec
    config: Config
    decoding: Decoding
    model_ref: str
    backend: str = "torch"
    limits: Limits = field(default_factory=Limits)  # what one upload and one answer may cost (bounds.py)


@dataclass
class Answer:
    """What the page shows for one video."""

    status: str  # one line: the video, its views and the shown labels with scores; or "error: ..."
    labels: dict[str, float] = field(default_factory=dict)  # what task.shown gives, best first
    chart: Any = None  # a matplotlib figure: every class's score against its threshold (multi-label)
    timeline_png: str | None = None
    timeline_follows: bool = False  # long enough for a timeline, which the page makes in its own lane
    segments: list[list[Any]] = field(default_factory=list)  # [start s, end s, label, score]


def load_demo(model_ref: str, config: Config, backend: str = "torch", zero_shot: dict[str, int] | None = None) -> Demo:
    """The model the page serves (`zero_shot`: the classes an X-CLIP checkpoint scores against), loaded once."""
    transformers_logging.disable_progress_bar()
    model, spec = load_model(model_ref, config, backend, zero_shot)
    decoding = choose_decoder(config.data.decoder)
    announce(decoding)
    return Demo(model, spec, config, decoding, model_ref, backend)


def answer(demo: Demo, video: str | None, out: Path) -> Answer:
    """The page's answer for the file at `video`, its labels and (a long video) its timeline, whose files go
    to `out`. A UserError (not a video, does not decode, too large or too long, over its time) is the one
    line, with the server's temporary path cut to the file's name."""
    if not video:
        return Answer("Upload a video or pick one of the test videos.")
    path, deadline = Path(video), demo.limits.deadline()
    try:
        record = checked_upload(demo, path)
    except UserError as err:
        return one_line(path, err)
    result = labels_answer(demo, video, deadline, record)
    if not result.timeline_follows:  # an error, or too short for a timeline
        return result
    line = timeline_answer(demo, video, out, deadline, record)
    result.timeline_png, result.segments = line.timeline_png, line.segments
    if line.status:
        result.status = line.status
    return result


def one_line(path: Path, err: UserError) -> Answer:
    return Answer(f"error: {str(err).replace(str(path), path.name)}")


def labels_answer(demo: Demo, video: str, deadline: Deadline, record: Any = None) -> Answer:
    """The video's labels and scores from config.eval's views (its timeline aside); `record`: the upload's,
    where checked_upload already gave it."""
    path = Path(video)
    try:
        record = record or checked_upload(demo, path)
        result = _labels(demo, path, manual_scores(demo, record, deadline))
    except UserError as err:
        return one_line(path, err)
    result.timeline_follows = long_enough(demo, record)
    return result


def long_enough(demo: Demo, record: Any) -> bool:
    """Whether a video is long enough for a timeline to say more than its labels."""
    return record.duration >= TIMELINE_CLIPS * float(demo.spec.preprocess.clip_duration(record.fps))


def checked_upload(demo: Demo, path: Path) -> Any:
    """The upload's record, where it is a video within the page's bounds (its size and duration)."""
    demo.limits.check_size(path.name, path.stat().st_size / 2**20)  # before it is opened
    (record,) = video_records([path])  # a file that does not open as a video stops here, with its name
    demo.limits.check_duration(path.name, record.duration)
    return record


def _labels(demo: Demo, path: Path, scores: torch.Tensor) -> Answer:
    spec, cfg = demo.spec, demo.config
    (labels, values), = spec.task.shown(scores[None], spec.id2label, cfg.infer.top_k)
    views = f"{cfg.eval.num_clips} clips x {cfg.eval.num_crops} crops"
    shown = ", ".join(f"{label} {value:.4f}" for label, value in zip(labels, values)) or "no label shown"
    threshold = answered_unknown(spec, values)
    if threshold is not None:  # infer.unknown: no class reaches the threshold
        shown = f"{UNKNOWN} (no class reaches {threshold:.3f}; best guesses: {shown})"
    return Answer(f"{path.name} ({views}): {shown}", dict(zip(labels, values)), threshold_chart(demo, scores, labels))


def timeline_answer(demo: Demo, video: str, out: Path, deadline: Deadline, record: Any = None) -> Answer:
    """A long video's timeline (plot and segments; `status` only where it failed); nothing for a short one."""
    path = Path(video)
    try:
        record = record or checked_upload(demo, path)
        spec, cfg = demo.spec, demo.config
        if not long_enough(demo, record):
            return Answer("")
        try:
            line = timeline(demo.model, spec, path, deadline.decoding(demo.decoding), None, cfg.eval.batch_size)
        except DecodeError as err:
            raise UserError(f"{first_line(err)}; check that the file plays") from None
    except UserError as err:
        return one_line(path, err)
    shortest = line.default_min_segment()  # the defaults infer.py --timeline has
    segments = line.segments(shortest, SWITCH_COST)
    files = write_timeline(line, segments, out, cfg.infer.top_k, shortest, SWITCH_COST)
    return Answer("", timeline_png=str(files["png"]), segments=[[s.start, s.end, s.label, s.score] for s in segments])


def explain_answer(demo: Demo, video: str, out: Path, deadline: Deadline) -> tuple[str | None, str | None, str]:
    """Where the model saw the video's top label (HiResCAM, explain.py): the blended MP4 and the curve's
    PNG, or a one-line reason why not."""
    from .explain_media import explained_files

    path = Path(video)
    if demo.backend != "torch":
        return None, None, f"Where the model looked: needs the torch backend (this page serves {demo.backend})"
    try:
        checked_upload(demo, path)
        try:
            found, files = explained_files(demo.model, demo.spec, path, deadline.decoding(demo.decoding), "hirescam",
                                           None, out, demo.config.eval.batch_size)
        except DecodeError as err:
            raise UserError(f"{first_line(err)}; check that the file plays") from None
    except UserError as err:
        return None, None, one_line(path, err).status
    return str(files["mp4"]), str(files["curve"]), f"Where the model saw {found.label} (HiResCAM)"


def manual_scores(demo: Demo, record: Any, deadline: Deadline | None = None) -> torch.Tensor:
    """(classes,) scores of one video from config.eval's views: predict_manual's computation, one video."""
    cfg = demo.config
    decode = deadline.bound(demo.decoding.decode) if deadline else demo.decoding.decode
    views = ViewDataset([record], "", {}, demo.spec.preprocess, cfg.eval.num_clips, cfg.eval.num_crops, decode)
    try:
        return video_scores(demo.model, demo.spec, views, cfg.eval.batch_size)[0]
    except DecodeError as err:
        raise UserError(f"{first_line(err)}; check that the file plays") from None


def threshold_chart(demo: Demo, scores: torch.Tensor, shown: list[str]) -> Any:
    """For a task with per-class `thresholds` (multi-label): every class's score as a bar, its threshold
    as a tick, the shown labels coloured; None for a task without (its shown labels are the chart)."""
    task, classes = demo.spec.task, len(demo.spec.id2label)
    if not hasattr(task, "thresholds"):
        return None
    # a multi-label task before thresholds are chosen on val holds None; its threshold_vector says what it uses
    vector = getattr(task, "threshold_vector", None)
    thresholds = vector(classes).tolist() if vector else list(task.thresholds)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [demo.spec.id2label[i] for i in range(classes)]
    fig, ax = plt.subplots(figsize=(6, 1 + 0.3 * classes))
    ax.barh(names, scores.tolist(), color=["tab:green" if n in shown else "tab:gray" for n in names])
    ax.scatter([float(t) for t in thresholds], names, marker="|", s=200, color="black", label="threshold")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("score")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    plt.close(fig)  # gradio draws it from the object; pyplot need not keep it
    return fig


def run_metrics(model_ref: str) -> dict[str, Any]:
    """The metrics.json train.py wrote beside the model: in the folder (an export: in the run folder above
    it), or in the Hub repo train.push_to_hub filled; {} where there is none."""
    folder = Path(model_ref)
    if folder.is_dir():
        for candidate in (folder, folder.parent) if (folder / "model.onnx").is_file() else (folder,):
            if (candidate / METRICS).is_file():
                return json.loads((candidate / METRICS).read_text())
        return {}
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    if not offline() and unreachable() is not None:  # the model came from the cache: so do the metrics, or none
        with from_the_cache(), contextlib.suppress(OSError, EntryNotFoundError):
            return json.loads(Path(hf_hub_download(model_ref, METRICS)).read_text())
        return {}
    try:
        return json.loads(Path(hf_hub_download(model_ref, METRICS)).read_text())
    except (OSError, EntryNotFoundError):  # not pushed, or the Hub out of reach: the card says it is unknown
        return {}


def card_facts(demo: Demo) -> str:
    """The model card's facts, in Markdown: what the model is, what it sees, how it scored on test."""
    spec, cfg, p = demo.spec, demo.config, demo.spec.preprocess
    names = [spec.id2label[i] for i in range(len(spec.id2label))]
    lines = [f"**{demo.model_ref}** ({demo.backend}): {spec.model_type}, {spec.task.name.replace('_', '-')}, "
             f"{len(names)} classes: {', '.join(names)}",
             f"Each video: {cfg.eval.num_clips} clips x {cfg.eval.num_crops} crops of {p.num_frames} frames at "
             f"stride {p.sample_rate}, {p.crop_size[1]}x{p.crop_size[0]} px, scores averaged"]
    test = run_metrics(demo.model_ref).get("test", {})
    scalars = {k: v for k, v in test.items() if isinstance(v, float)}  # whatever the task measured
    lines.append(f"Test split ({test.get('videos', '?')} videos, {test.get('views', '?')}): "
                 + ", ".join(f"{k} {v:.3f}" for k, v in scalars.items()) if scalars
                 else "Test accuracy: unknown (no metrics.json beside the model)")
    return "  \n".join(lines)


def example_videos(config: Config) -> list[str]:
    """The run's test videos (one per class first, EXAMPLES at most), where its data folder is here."""
    try:
        _, records = load_prepared(config.data.root)
    except UserError:
        return []
    test = [r for r in records if r.split == "test" and (Path(config.data.root) / r.path).is_file()]
    first = {}
    for r in test:
        first.setdefault(r.label, r)
    picked = list(first.values()) + [r for r in test if r not in first.values()]
    return [str(Path(config.data.root) / r.path) for r in picked[:EXAMPLES]]


def answer_slots() -> int:
    """Answers run at once: one per two cores this process may use (its affinity and CPU quota), at least one. An answer's model step
    already spreads over every core (torch's threads) and its decoding takes one, so a second answer
    gains little: on 2 cores bench/page_load.py measured 3.1-3.5 answers/s with one slot or two."""
    return max(1, usable_cores() // 2)


def tidy(cache: Path, out: Path, keep_s: float) -> None:
    """Delete what is older than `keep_s` and that gradio's delete_cache leaves: the page's answer folders in
    `out` (with what it did not serve: a timeline's JSON and CSV), and in gradio's `cache` the empty hash
    folders its deleted files leave and the empty `tmp*` files its upload parser leaves, one per upload
    (gradio 6.31). Nothing else in `cache` is touched, nor anything there that holds data."""
    for path in _older(out, keep_s):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)  # an answer still writing has a younger folder
    for path in _older(cache, keep_s):
        if GRADIO_HASH.fullmatch(path.name) and path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.rmdir()  # refused where it is not empty
        elif GRADIO_UPLOAD_PART.fullmatch(path.name) and path.is_file() and path.stat().st_size == 0:
            path.unlink(missing_ok=True)


def _older(folder: Path, age_s: float) -> list[Path]:
    """The entries of `folder` last changed more than `age_s` ago (none where it or they are gone)."""
    now, found = time.time(), []
    with contextlib.suppress(FileNotFoundError):
        for path in folder.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if now - path.lstat().st_mtime > age_s:
                    found.append(path)
    return found


def keep_tidy(cache: Path, out: Path, keep_s: float, every_s: float) -> None:
    """Run `tidy` every `every_s` seconds for as long as the process runs, as gradio runs its delete_cache."""
    def loop() -> None:
        while True:
            time.sleep(every_s)
            tidy(cache, out, keep_s)

    threading.Thread(target=loop, name="page-tidy", daemon=True).start()


def video_handlers(demo: Demo, out: Path) -> tuple[Any, Any, Any]:
    """The Video tab's events: `show` (the preview, then the labels), `show_timeline` (a long video's
    timeline, in its own lane) and `show_explanation` (where the model saw the top label, where the visitor
    ticked the box; the timeline's lane); one request at a time per visitor across them."""
    import gradio as gr

    visitors = OnePerVisitor()

    def show(path: str | None, request: gr.Request) -> Any:
        """The video first (while it is scored), then its labels; a long video's timeline follows."""
        hidden = gr.update(visible=False)
        if not path:
            yield gr.update(value=None, visible=False), "", answer(demo, None, out).status, None, hidden, hidden, hidden, ""
            return
        try:
            with visitors.turn(getattr(request, "session_hash", None)):
                # one answer's files, in a folder of its own: concurrent answers' names never meet
                seen = preview(Path(path), Path(tempfile.mkdtemp(dir=out)))
                playing = gr.update(value=str(seen.path) if seen.path else None, visible=seen.path is not None)
                yield (playing, seen.note, f"Scoring {Path(path).name}...", None, hidden, hidden, hidden, "")
                a = labels_answer(demo, path, demo.limits.deadline())
        except UserError as err:  # this visitor's last answer is still running: it is left as it is
            yield gr.update(), gr.update(), f"error: {err}", gr.update(), gr.update(), gr.update(), gr.update(), ""
            return
        more = "Making the timeline..." if a.timeline_follows else ""
        yield (playing, seen.note, a.status, a.labels or None, gr.update(value=a.chart, visible=a.chart is not None),
               hidden, hidden, more)

    def show_timeline(path: str | None, status_line: str, request: gr.Request) -> tuple[Any, Any, str]:
        """A long video's timeline, in a lane of its own (TIMELINE_SLOTS at once): short answers pass it."""
        if not path or status_line.startswith("error: "):
            return gr.update(), gr.update(), ""
        try:
            with visitors.turn(getattr(request, "session_hash", None)):
                t = timeline_answer(demo, path, Path(tempfile.mkdtemp(dir=out)), demo.limits.deadline())
        except UserError as err:
            return gr.update(visible=False), gr.update(visible=False), f"error: {err}"
        return (gr.update(value=t.timeline_png, visible=t.timeline_png is not None),
                gr.update(value=t.segments or None, visible=bool(t.segments)), t.status)

    def show_explanation(path: str | None, status_line: str, wanted: bool, request: gr.Request
                         ) -> tuple[Any, Any, str]:
        """The map of the top label, where the visitor asked for it, in the timeline's lane."""
        hidden = gr.update(visible=False)
        if not wanted or not path or status_line.startswith("error: "):
            return hidden, hidden, ""
        try:
            with visitors.turn(getattr(request, "session_hash", None)):
                mp4, curve, line = explain_answer(demo, path, Path(tempfile.mkdtemp(dir=out)), demo.limits.deadline())
        except UserError as err:
            return hidden, hidden, f"error: {err}"
        return gr.update(value=mp4, visible=mp4 is not None), gr.update(value=curve, visible=curve is not None), line

    return show, show_timeline, show_explanation


def build_page(demo: Demo, examples: list[str] | None = None, *, keep_s: int = KEEP_S, sweep_s: int = SWEEP_S,
               queue_size: int = QUEUE_SIZE, slots: int | None = None) -> Any:
    """The page's gr.Blocks (not launched; queued): `examples` default: the run's test videos. Uploads and
    answers are deleted `keep_s` after they were written (gradio's delete_cache looks every `sweep_s`);
    `queue_size` requests wait at most; `slots` answers run at once (default answer_slots())."""
    import gradio as gr

    examples = example_videos(demo.config) if examples is None else examples
    with gr.Blocks(title=f"{demo.model_ref}: video classifier", analytics_enabled=False,
                   delete_cache=(sweep_s, keep_s)) as page:
        # the page's own files, in gradio's cache: served from there without a second copy
        cache = Path(page.GRADIO_CACHE)
        cache.mkdir(parents=True, exist_ok=True)
        out = Path(tempfile.mkdtemp(prefix="video-classifier-page-", dir=cache))
        atexit.register(shutil.rmtree, out, ignore_errors=True)
        keep_tidy(cache, out, keep_s, sweep_s)
        gr.Markdown(f"## Video classifier\n{card_facts(demo)}", elem_id="card")
        with gr.Tab("Video", elem_id="video-tab"):
            with gr.Row():
                with gr.Column():
                    video = gr.File(label=f"Video (up to {demo.limits.upload_mb:g} MB, "
                                          f"{minutes(demo.limits.upload_minutes * 60)})", type="filepath",
                                    elem_id="video")
                    player = gr.Video(label="The video scored", interactive=False, visible=False, height=320,
                                      elem_id="preview")
                    note = gr.Markdown("", elem_id="preview-note")
                    if examples:
                        gr.Examples(examples, inputs=video, label="The run's test videos")
                with gr.Column():
                    status = gr.Markdown(answer(demo, None, out).status, elem_id="status")
                    labels = gr.Label(num_top_classes=demo.config.infer.top_k, label="Labels", elem_id="labels")
                    chart = gr.Plot(label="Scores against thresholds", visible=False, elem_id="thresholds")
                    wanted = gr.Checkbox(label="Show where the model looked (HiResCAM)", value=False,
                                         elem_id="explain-toggle", interactive=demo.backend == "torch")
                    explained = gr.Video(label="Where the model looked", interactive=False, visible=False,
                                         height=320, elem_id="explained")
            timeline_note = gr.Markdown("", elem_id="timeline-status")
            plot = gr.Image(label="Timeline", type="filepath", visible=False, elem_id="timeline")
            segments = gr.Dataframe(headers=["start s", "end s", "label", "score"], visible=False,
                                    elem_id="segments", label="Segments (click one to play the video from its start)")
            explain_note = gr.Markdown("", elem_id="explain-status")
            curve = gr.Image(label="Which seconds mattered", type="filepath", visible=False, elem_id="explain-curve")
        with gr.Tab("Live", elem_id="live-tab"):
            sources = LiveSources(demo.model, demo.spec)
            live_tab(page, sources, demo.config.infer.top_k)
        show, show_timeline, show_explanation = video_handlers(demo, out)
        lane = {"concurrency_limit": TIMELINE_SLOTS, "concurrency_id": "timeline"}
        video.change(show, video, [player, note, status, labels, chart, plot, segments, timeline_note],
                     api_name="answer").then(show_timeline, [video, status], [plot, segments, timeline_note],
                                             api_name="timeline", **lane).then(
            show_explanation, [video, status, wanted], [explained, curve, explain_note], api_name="explain", **lane)
        wanted.change(show_explanation, [video, status, wanted], [explained, curve, explain_note], **lane)
        page.load(None, js=SEEK_JS)
    page.queue(max_size=queue_size, default_concurrency_limit=slots or answer_slots())
    page.allowed = [str(Path(e).parent) for e in examples]  # folders the examples may be served from
    page.live_sources, page.limits = sources, demo.limits
    return page


def serve(page: Any, host: str | None = None, port: int | None = None, block: bool = True,
          allow_private_streams: bool = False) -> Any:
    """Launch the page: on `host` (None: GRADIO_SERVER_NAME, else 127.0.0.1, this machine only), never a
    share link; system fonts, so that the browser fetches nothing from outside either. On loopback the live
    tab reads streams from any address; beyond it, from public addresses only unless `allow_private_streams`.
    One line on stderr says what the page allows."""
    import gradio as gr

    listening = host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    targets = StreamTargets(allow_private=allow_private_streams or on_loopback(listening))
    if hasattr(page, "live_sources"):
        page.live_sources.targets = targets
    limits = getattr(page, "limits", Limits())
    page.allows = f"page on {listening}: {limits.describe()}; live {targets.describe()}"
    print(page.allows, file=sys.stderr, flush=True)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    page.launch(server_name=host, server_port=port, share=False, max_file_size=f"{limits.upload_mb:g}mb",
                allowed_paths=getattr(page, "allowed", []), theme=theme, prevent_thread_lock=not block,
                quiet=not block)
    return page


def on_loopback(host: str) -> bool:
    """Whether a page listening on `host` is reached from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: whatever it resolves to may be reached from a network


SPACE_APP = '''"""A Hugging Face Space: {model} behind the video classifier's web page (video_classifier/serve/web.py).

Written by `python app.py --model {source} --space DIR`; `python app.py` serves it here as on the Space.
"""

from pathlib import Path

from video_classifier.core.config import load_config
from video_classifier.serve.web import build_page, load_demo, serve

HERE = Path(__file__).resolve().parent
MODEL = {model_expr}
demo = load_demo(MODEL, load_config(HERE / "config.yaml"), {backend!r})
page = build_page(demo, sorted(str(p) for p in (HERE / "examples").glob("*/*")))

if __name__ == "__main__":
    serve(page)  # the Space sets GRADIO_SERVER_NAME=0.0.0.0 and its port
'''

SPACE_README = """---
title: {title}
sdk: gradio
sdk_version: {gradio}
python_version: "{python}"
app_file: app.py
pinned: false
{models}---

{model}: upload a video or pick a test video; the page shows its labels and scores (the views and
scoring of the project's infer.py) and, for a long video, a timeline. Written by
`python app.py --model {source} --space DIR`.
"""


def write_space(model_folder: str, config_file: str, config: Config, out: Path, hub_id: str | None = None,
                backend: str = "torch") -> list[Path]:
    """Write into `out` (new or empty) what a Space needs to serve the model: app.py, requirements.txt,
    README.md with the Space's front matter, the package, the run's config, a few test videos, and the model
    (its folder's files, not its checkpoints) unless it is to come from the Hub as `hub_id`."""
    import gradio as gr

    folder = Path(model_folder)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--space folder {out} is not empty: give a new or empty folder")
    if hub_id is None and not (folder / "config.json").is_file():
        raise UserError(f"model folder {folder} has no config.json: give a folder train.py or export.py wrote, "
                        "or --hub-id for a model on the Hub")
    out.mkdir(parents=True, exist_ok=True)
    if hub_id is None:
        (out / "model").mkdir()
        for f in folder.iterdir():
            if f.is_file():  # checkpoint-*, runs/ and onnx/ are subfolders: left out
                shutil.copy2(f, out / "model" / f.name)
        metrics = folder.parent / METRICS  # an export's test metrics are its run's, one folder up
        if (folder / "model.onnx").is_file() and metrics.is_file() and not (out / "model" / metrics.name).exists():
            shutil.copy2(metrics, out / "model" / metrics.name)
    for video in example_videos(config):
        target = out / "examples" / Path(video).parent.name / Path(video).name  # <Class>/<video>
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(video, target)
    shutil.copytree(REPO / "video_classifier", out / "video_classifier",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(config_file, out / "config.yaml")
    wanted = [line for line in (REPO / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#") and not line.startswith(REQUIREMENTS_NOT_SERVED)]
    (out / "requirements.txt").write_text("\n".join(wanted) + "\n")
    model = hub_id or "model"
    model_expr = repr(hub_id) if hub_id else 'str(HERE / "model")'
    (out / "app.py").write_text(SPACE_APP.format(model=model, source=model_folder, model_expr=model_expr,
                                                 backend=backend))
    title = (hub_id or folder.resolve().name).split("/")[-1][:30]
    (out / "README.md").write_text(SPACE_README.format(
        title=title, gradio=gr.__version__, python=f"{sys.version_info.major}.{sys.version_info.minor}",
        models=f"models:\n- {hub_id}\n" if hub_id else "", model=model, source=model_folder))
    return sorted(p for p in out.rglob("*") if p.is_file())
