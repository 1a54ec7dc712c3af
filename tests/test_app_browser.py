"""The web page in a real browser: headless Chromium on a loopback port uploads test videos and a damaged
file, and reads the answers off the page as a user sees them, and the video it plays beside them; its
fake camera, playing a video, is classified live on the Live tab. Needs selenium, Chromium and chromedriver
(Debian: apt-get install chromium chromium-driver; .ci/run installs them): conftest's `browser` need skips
it where one is missing, and fails the run instead under CI or EXPECT_BROWSER=1."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import av
import pytest
import videos
from conftest import BROWSER, DRIVER, REPO, run_main
from videos import write_colours

from video_classifier.core.config import load_config
from video_classifier.data.decoding import probe_header
from video_classifier.data.manifest import load_prepared
from video_classifier.serve.web import build_page, load_demo, serve

pytestmark = pytest.mark.browser  # skipped before the tiny run is trained for nothing where a need is missing
WAIT_S = 60  # one answer takes about 1 s here; the rest is slack for 2 busy cores


@pytest.fixture(scope="module")
def page_url(trained):
    """The page of the tiny run, served on a free loopback port for this module; the model loaded once."""
    config_path, folder, _ = trained
    url, page = served(config_path, folder)
    yield url
    page.close()


def served(config_path: Path, folder: Path) -> tuple[str, object]:
    """The page of a run on a free loopback port: (its URL, the running page)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page = serve(build_page(load_demo(str(folder), load_config(config_path))), "127.0.0.1", port, block=False)
    return f"http://127.0.0.1:{port}/", page


def chromium(*extra: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.update(SE_OFFLINE="true", SE_AVOID_STATS="true")  # Selenium Manager: no downloads, no stats
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,860", *extra):
        options.add_argument(arg)  # --no-sandbox: CI runs as root, where Chromium's sandbox will not start
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def upload(driver, path: Path) -> str:
    """Put `path` into the page's upload field (clearing the one before) and return the status line once
    the answer for it is there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, WAIT_S)
    for clear in driver.find_elements(By.CSS_SELECTOR, "#video button[aria-label=Clear]"):
        clear.click()
    field = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#video input[type=file]"))[0]
    field.send_keys(str(path))
    status = wait.until(lambda d: (t := d.find_element(By.ID, "status").text).startswith((path.name, "error: "))
                        and path.name in t and t)
    return status


def played(driver, where: str = "#preview") -> dict:
    """The page's video element (in `where`) once it has its first frame decoded: its duration, size and
    error (None)."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script(
        f"const v = document.querySelector('{where} video');"
        "if (v && v.readyState < 2) { v.muted = true; v.play().catch(() => {}); }"  # a frame, where preload waits
        "return v && (v.readyState >= 2 || v.error) ? {duration: v.duration, width: v.videoWidth,"
        " error: v.error && v.error.code, src: v.currentSrc} : null;"))


def top_label(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, '#labels [data-testid="label-output-value"]').text


def test_page_in_a_browser_gives_infers_labels_and_survives_a_damaged_file(trained, page_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    config_path, folder, _ = trained
    config = load_config(config_path)
    _, records = load_prepared(config.data.root)
    first, second = [Path(config.data.root) / r.path for r in records if r.split == "test"][:2]
    infer = {p["video"]: p for p in json.loads(run_main("infer.py", str(first), str(second), "--model", str(folder),
                                                        "--json").stdout)}
    browser.get(page_url)
    card = WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.ID, "card"))[0]  # drawn by script
    assert "videomae" in card.text and "classes" in card.text  # the model's card facts

    expected = infer[str(first)]
    status = upload(browser, first)
    assert top_label(browser) == expected["labels"][0]
    assert status == f"{first.name} ({expected['views']}): " + ", ".join(
        f"{label} {score:.4f}" for label, score in zip(expected["labels"], expected["scores"]))
    frames, fps, seconds = probe_header(first)  # MPEG-4 Part 2 in AVI: the page shows an H.264 copy
    video = played(browser)
    assert video["error"] is None and video["width"] > 0 and video["src"].endswith(".preview.mp4"), video
    assert video["duration"] == pytest.approx(seconds, abs=2 / fps)  # within two frames
    assert "a copy in H.264" in browser.find_element(By.ID, "preview-note").text  # says it is not the file itself

    damaged = tmp_path / "damaged.avi"
    damaged.write_bytes(first.read_bytes()[:1500])  # a copy cut short: the header, hardly a frame
    status = upload(browser, damaged)
    assert status.startswith("error: ") and "\n" not in status and "damaged.avi" in status, status

    status = upload(browser, second)  # the server still serves
    assert top_label(browser) == infer[str(second)]["labels"][0]
    assert played(browser)["duration"] == pytest.approx(probe_header(second)[2], abs=2 / fps)
    assert status.startswith(f"{second.name} ({expected['views']}): {infer[str(second)]['labels'][0]} ")

    for clear in browser.find_elements(By.CSS_SELECTOR, "#video button[aria-label=Clear]"):
        clear.click()
    browser.find_element(By.XPATH, f"//button[normalize-space()='{first.name}']").click()  # picked, not uploaded
    picked = WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "status").text.startswith(first.name))
    assert picked and top_label(browser) == expected["labels"][0]

    shot = tmp_path / "app.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_a_long_videos_segments_play_the_video_from_their_start(page_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    long = videos.write(tmp_path / "long.avi", n=100)  # 4 s at 25 fps: 12 clips of the tiny model, a timeline
    browser.get(page_url)
    assert upload(browser, long).startswith("long.avi (")
    assert played(browser)["duration"] == pytest.approx(4.0, abs=2 / 25)
    rows = WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#segments [role=row]"
                                                                          " [data-col='0']"))
    start = float(rows[-1].text)  # the last segment's
    browser.execute_script("document.querySelector('#preview video').currentTime = 3.9")
    rows[-1].click()
    at = browser.execute_script("return document.querySelector('#preview video').currentTime")
    assert at == pytest.approx(start, abs=0.01) and start < 3.9


def camera_file(path: Path, parts: list[tuple[str, int]]) -> Path:
    """A Y4M file of colour scenes (what Chromium's fake camera plays, in a loop), from the colour test videos."""
    video = path.with_suffix(".avi")
    write_colours(video, parts, seed=3)
    with av.open(str(video)) as source, av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("wrapped_avframe", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in source.decode(video=0):
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode())
    return path


def test_the_camera_is_classified_live(colour_model, tmp_path):
    """Chromium's fake camera plays 2.4 s of blue then 2.4 s of red, over and over; on the Live tab, once the
    camera streams, the label read off the page is Blue and Red in turn, each the colour then playing, with
    the line saying since when."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    y4m = camera_file(tmp_path / "camera.y4m", [("Blue", 60), ("Red", 60)])
    url, page = served(*colour_model)
    driver = chromium("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                      f"--use-file-for-fake-video-capture={y4m}")
    try:
        wait = WebDriverWait(driver, WAIT_S)
        driver.get(url)
        wait.until(lambda d: [t for t in d.find_elements(By.CSS_SELECTOR, "button[role=tab]") if t.text == "Live"])[0].click()
        wait.until(lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "#camera button")
                              if "Access Webcam" in b.text])[0].click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#camera button[aria-label='capture photo']"))[0].click()
        seen: list[str] = []
        labelled: set[str] = set()  # what the label component showed while the line named the same label
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(seen) < 3:
            # one snapshot of the page; the line (Markdown, rendered asynchronously) and the label component
            # may be a moment apart after an update, so each is checked on its own and together once agreeing
            line, shown = driver.execute_script(
                "const label = document.querySelector('#live-labels [data-testid=\"label-output-value\"]');"
                "return [document.querySelector('#live-status').innerText, label ? label.innerText : null];")
            if line.startswith("camera: ") and " since " in line:
                label = line.removeprefix("camera: ").split(" since ")[0]
                if not seen or seen[-1] != label:
                    seen.append(label)
                if shown == label:
                    labelled.add(label)
            time.sleep(0.2)
        assert len(seen) >= 3 and set(seen) == {"Blue", "Red"}, seen  # both colours, in turn
        assert all(a != b for a, b in zip(seen, seen[1:]))
        assert labelled == {"Blue", "Red"}  # the label component showed each one too
    finally:
        driver.quit()
        page.close()


def test_the_demo_models_page_with_a_timeline(tmp_path):
    """The page of `make demo`'s model (where it has been made: CI's first pass makes it before the tests) on an
    8-s video of three scenes: the labels infer.py gives, the video playing, the timeline's plot and one segment
    per scene in order. Its screenshot is docs/app.png (APP_SCREENSHOT=docs/app.png)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from video_classifier.data.synthetic import write_long_video

    demo = REPO / "runs" / "demo"
    if not (demo / "config.json").is_file():
        pytest.skip("needs make demo's model (runs/demo)")
    config_path = REPO / "configs" / "demo.yaml"
    video = tmp_path / "three_scenes.mp4"
    truth = write_long_video(video, [("PanLeft", 3.0), ("PanUp", 2.5), ("PanDownRight", 2.5)],
                             load_config(config_path).data.synthetic, seed=11)
    (expected,) = json.loads(run_main("infer.py", str(video), "--config", str(config_path), "--model", str(demo),
                                      "--json").stdout)
    url, page = served(config_path, demo)
    driver = chromium()
    try:
        driver.get(url)
        status = upload(driver, video)
        assert top_label(driver) == expected["labels"][0] and status.startswith(f"{video.name} (")
        assert played(driver)["duration"] == pytest.approx(truth[-1][1], abs=0.1)
        rows = WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#segments [role=row]"
                                                                             " [data-col='2']"))
        assert [r.text for r in rows] == ["PanLeft", "PanUp", "PanDownRight"]
        assert driver.find_element(By.CSS_SELECTOR, "#timeline img").get_attribute("naturalWidth") != "0"
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(2400, height + 140))  # the whole page: video, labels, timeline, segments
        driver.execute_script("window.scrollTo(0, 0)")
        shot = Path(os.environ.get("APP_SCREENSHOT", tmp_path / "app.png"))
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()
        page.close()


def test_the_demo_models_page_shows_where_the_model_looked(tmp_path):
    """With the box ticked, the page of `make demo`'s model plays the video with the HiResCAM map blended in
    (as long as the upload) and draws the curve under the timeline. Its screenshot is docs/explain.png
    (EXPLAIN_SCREENSHOT=docs/explain.png)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from video_classifier.data.synthetic import write_long_video

    demo = REPO / "runs" / "demo"
    if not (demo / "config.json").is_file():
        pytest.skip("needs make demo's model (runs/demo)")
    config_path = REPO / "configs" / "demo.yaml"
    video = tmp_path / "two_scenes.mp4"
    truth = write_long_video(video, [("PanLeft", 3.0), ("PanUp", 3.0)], load_config(config_path).data.synthetic,
                             seed=12)
    url, page = served(config_path, demo)
    driver = chromium()
    try:
        driver.get(url)
        wait = WebDriverWait(driver, WAIT_S)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#explain-toggle input"))[0].click()
        upload(driver, video)
        note = wait.until(lambda d: (t := d.find_element(By.ID, "explain-status").text) and t)
        assert note.startswith("Where the model saw ") and "(HiResCAM)" in note, note
        shown = played(driver, "#explained")
        assert shown["error"] is None and shown["duration"] == pytest.approx(truth[-1][1], abs=0.1)
        assert wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#explain-curve img")
                          .get_attribute("naturalWidth") not in (None, "0"))
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(2600, height + 140))  # the whole page, the curve at its foot
        driver.execute_script("window.scrollTo(0, 0)")
        shot = Path(os.environ.get("EXPLAIN_SCREENSHOT", tmp_path / "explain.png"))
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()
        page.close()
