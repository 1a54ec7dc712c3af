"""The page's live tab: the browser's camera, or a stream URL, classified as it plays (live.py's LiveTimeline).

A camera's frames reach the server through gradio's streaming image input, one every `sample_rate / LIVE_FPS`
seconds (the frames the model samples), timed by when they arrive; a stream URL is read on the server with
PyAV (decoding.stream_frames) at its own pace, a file behind a URL at its playing speed. Each source has a
LiveSession: frames are pushed as they come, and a thread of its own scores the newest ready window, so a
slow model makes the label lag by a window or two, never by a growing queue of frames. The label shown is
the end of the timeline so far, smoothed as infer.py --timeline smooths, with when it began.

A public page should not read the server's own files nor any protocol FFmpeg knows, nor reach the server's
own network: stream_targets.py says what a stream URL may reach in the page's mode. LIVE_SESSIONS sources
are scored at once at most, one per visitor; a slot is taken before a stream is opened and freed as soon as
its stream ends, fails or is refused. Each source stops after LIVE_MAX_S, and says so, or when its page closes.
"""

# no `from __future__ import annotations`: gradio reads live_tab's handlers' `gr.Request` annotations as objects
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import torch

from ..core.errors import DecodeError, UserError, first_line
from ..data.decoding import stream_frames
from .live import LiveTimeline
from .stream_targets import StreamTargets, check_stream_url

LIVE_FPS = 25.0  # the grid a camera's frames are laid on: the rate UCF101, Kinetics' median and the demo share
LIVE_SESSIONS = 4  # live sources scored at once, the page's whole
LIVE_MAX_S = 3600.0  # a source is scored this long at most; then it stops, and says so


def camera_every(demo_spec: Any) -> float:
    """Seconds between the camera frames the page asks the browser for: one per frame the model samples."""
    return demo_spec.preprocess.sample_rate / LIVE_FPS


@dataclass
class LiveSession:
    """One source's LiveTimeline, fed by `push` from the page's handler and scored by a thread of its own."""

    live: LiveTimeline
    began: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)
    closed: bool = False
    error: str | None = None  # a scoring failure, said once on the page
    shown: tuple[int, list] = (-1, [])  # (live.added, live.now()) : the label path is run once per new window

    def __post_init__(self) -> None:
        threading.Thread(target=self._score_forever, name=f"live-{self.live.name}", daemon=True).start()

    def push(self, at: float, frame: torch.Tensor) -> None:
        with self.lock:
            self.live.push(at, frame)
        self.wake.set()

    def end(self) -> None:
        """The source ended: its last windows are scored here, then the thread stops."""
        with self.lock:
            self.live.end()
            windows, clips = self.live.take()
        if windows:
            probs = self.live.score_clips(clips)
            with self.lock:
                self.live.add(windows, probs)
        self.close()

    def close(self) -> None:
        self.closed = True
        self.wake.set()

    def _score_forever(self) -> None:
        while not self.closed:
            self.wake.wait(timeout=1.0)
            self.wake.clear()
            with self.lock:
                windows, clips = self.live.take(newest_only=True)
            if not windows:
                continue
            try:
                probs = self.live.score_clips(clips)
            except Exception as err:  # noqa: BLE001 - a scoring failure ends this source, never the server
                self.error = first_line(err)
                self.closed = True
                return
            with self.lock:
                self.live.add(windows, probs)

    def describe(self) -> tuple[str, dict[str, float]]:
        """One line on the source's state, and the labels shown now with their scores."""
        with self.lock:
            if self.shown[0] != self.live.added:  # not on every camera frame: only when a window was scored
                self.shown = (self.live.added, self.live.now())
            now, seconds, skipped = self.shown[1], self.live.seconds, self.live.skipped
            scored = len(self.live.starts)
        window, stride = float(self.live.length), self.live.stride
        every = f"a {window:.2f}-s window scored every {stride:.2f} s"
        if self.error:
            return f"error: scoring stopped: {self.error}", {}
        if not now:
            return f"{self.live.name}: {seconds:.1f} s in; the first label comes after one window ({every})", {}
        behind = f", {skipped} skipped to keep up" if skipped else ""
        since = min(s.start for s in now)
        shown = ", ".join(s.label for s in now)
        return (f"{self.live.name}: {shown} since {since:.1f} s, at {seconds:.1f} s ({every}; {scored} windows"
                f"{behind})", {s.label: float(s.score) for s in now})


class LiveSources:
    """The page's live sessions by gradio session (one each), LIVE_SESSIONS at most at once; `targets`: what
    a stream URL may reach (default: public addresses only, until serve() knows the page listens on loopback)."""

    def __init__(self, model: Any, spec: Any, targets: StreamTargets | None = None):
        self.model, self.spec = model, spec
        self.targets = targets or StreamTargets()
        self.sessions: dict[str, LiveSession | None] = {}  # None: a slot held while its stream opens
        self.lock = threading.Lock()

    def reserve(self, key: str) -> None:
        """Hold a slot for `key` (its previous source stops): a one-line UserError where all are taken."""
        with self.lock:
            self._drop(key)
            if len(self.sessions) >= LIVE_SESSIONS:
                raise UserError(f"busy: {LIVE_SESSIONS} live sources are being scored; try again when one stops")
            self.sessions[key] = None

    def start(self, key: str, name: str, fps: float) -> LiveSession:
        """Score a source for `key` in the slot it holds (a camera takes one here)."""
        if self.sessions.get(key, False) is not None:  # absent, or a source of its own: not a reserved slot
            self.reserve(key)
        session = LiveSession(LiveTimeline(self.model, self.spec, fps, name))
        with self.lock:
            self.sessions[key] = session
        return session

    def get(self, key: str) -> LiveSession | None:
        return self.sessions.get(key)

    def stop(self, key: str) -> None:
        with self.lock:
            self._drop(key)

    def release(self, key: str, session: LiveSession | None) -> None:
        """Free `key`'s slot where it still holds `session` (None: the slot reserved for it)."""
        with self.lock:
            if key in self.sessions and self.sessions[key] is session:
                self._drop(key)

    def _drop(self, key: str) -> None:
        session = self.sessions.pop(key, None)
        if session:
            session.close()

    def camera_frame(self, key: str, image: np.ndarray | None) -> tuple[str, dict[str, float]]:
        """A frame from the browser's camera (H, W, 3) uint8, timed now; the state to show."""
        session = self.get(key)
        if image is None:
            return ("Camera off: start it to classify what it sees", {}) if session is None else session.describe()
        try:
            if session is None or session.live.name != "camera":
                session = self.start(key, "camera", LIVE_FPS)
        except UserError as err:
            return f"error: {err}", {}
        at = time.monotonic() - session.began
        if at > LIVE_MAX_S:
            self.stop(key)
            return f"camera: stopped after {LIVE_MAX_S / 60:.0f} minutes, the page's limit; start it again to go on", {}
        session.push(at, torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1))
        return session.describe()

    def play_url(self, key: str, url: str, update_every: float = 0.5) -> Any:
        """Read a stream URL at its pace, yielding (line, labels) every `update_every` seconds and at its end.
        The slot is taken before the URL is opened, and freed when the stream ends, fails or is refused."""
        try:
            url = check_stream_url(url)
            self.reserve(key)
        except UserError as err:
            yield f"error: {err}", {}
            return
        session = None
        try:
            with self.targets.reading(url) as options:
                rate, frames = stream_frames(url, options=options)
                session = self.start(key, urlsplit(url).path.rsplit("/", 1)[-1] or url, rate or LIVE_FPS)
                yield from self._follow(session, frames, update_every)
        except (UserError, DecodeError) as err:
            yield f"error: {err}", {}
        finally:
            self.release(key, session)

    def _follow(self, session: LiveSession, frames: Any, update_every: float) -> Any:
        """Push a stream's frames as it plays; the states to show, the last one saying why it stopped."""
        shown, why = 0.0, "the stream ended"
        try:
            for at, frame in frames:
                wait = at - (time.monotonic() - session.began)  # a file behind a URL plays at its own speed
                if wait > 0:
                    time.sleep(wait)
                session.push(at, frame)
                if session.closed:
                    why = "stopped"
                    break
                if max(at, time.monotonic() - session.began) > LIVE_MAX_S:
                    why = f"stopped after {LIVE_MAX_S / 60:.0f} minutes, the page's limit per stream"
                    break
                if time.monotonic() - shown >= update_every:
                    shown = time.monotonic()
                    yield session.describe()
        except DecodeError:
            session.close()
            raise
        finally:
            frames.close()
        session.end()
        line, labels = session.describe()
        yield f"{line}; {why}", labels


def live_tab(page: Any, sources: LiveSources, top_k: int) -> None:
    """The live tab's components and events, inside the page's gr.Blocks `page` (and a gr.Tab); a closed page's
    source stops."""
    import gradio as gr

    live = LiveTimeline(sources.model, sources.spec, LIVE_FPS)  # the window and stride the tab speaks of
    gr.Markdown(f"What the camera (or a stream) shows, classified as it plays: a {float(live.length):.2f}-s window "
                f"scored every {live.stride:.2f} s, labels smoothed as the timeline smooths them.")
    with gr.Row():
        with gr.Column():
            camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                              webcam_options=gr.WebcamOptions(mirror=False), elem_id="camera")
            url = gr.Textbox(label="or a stream URL (rtsp://, rtmp://, http(s)://)", elem_id="stream-url")
            with gr.Row():
                play = gr.Button("Play the stream", elem_id="play-stream")
                stop = gr.Button("Stop", elem_id="stop-stream")
        with gr.Column():
            line = gr.Markdown("Start the camera, or give a stream URL", elem_id="live-status")
            labels = gr.Label(num_top_classes=top_k, label="Live label", elem_id="live-labels")

    def shown(state: tuple[str, dict[str, float]]) -> tuple[str, Any]:
        return state[0], state[1] or None

    def on_frame(image: np.ndarray | None, request: gr.Request) -> tuple[str, Any]:
        return shown(sources.camera_frame(request.session_hash, image))

    def on_play(address: str, request: gr.Request) -> Any:
        for state in sources.play_url(request.session_hash, address):
            yield shown(state)

    def on_stop(request: gr.Request) -> None:
        sources.stop(request.session_hash)

    # the handlers only hand frames over (scoring runs in each source's thread): they need no answer slot
    camera.stream(on_frame, camera, [line, labels], stream_every=camera_every(sources.spec),
                  concurrency_limit=LIVE_SESSIONS, show_progress="hidden", api_name=False)
    playing = play.click(on_play, url, [line, labels], concurrency_limit=LIVE_SESSIONS, api_name="live_url")
    stop.click(on_stop, None, None, cancels=[playing], api_name=False)
    camera.clear(on_stop, None, None, api_name=False)
    page.unload(on_stop)
