"""The live camera as a visitor meets it: Chromium's fake camera plays a video of pictures, and the
page's live mode captions what it sees. The browser test (tests/test_live_camera.py) checks it keeps
captioning and stops on Stop; `make bench` reports the frames per second a visitor sees.

Needs Playwright (requirements-dev.txt) and Debian's chromium.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

from PIL import Image

CHROMIUM = "/usr/bin/chromium"
FPS, SIZE = 10, (320, 240)


def write_y4m(path: Path, pictures, seconds_each: int = 1, fps: int = FPS) -> Path:
    """A YUV4MPEG2 (4:2:0) video of each picture in turn, `seconds_each` each: what
    --use-file-for-fake-video-capture plays in a loop."""
    half = (SIZE[0] // 2, SIZE[1] // 2)
    with path.open("wb") as out:
        out.write(b"YUV4MPEG2 W%d H%d F%d:1 Ip A1:1 C420jpeg\n" % (*SIZE, fps))
        for picture in pictures:
            with Image.open(picture) as image:
                y, u, v = image.convert("RGB").resize(SIZE).convert("YCbCr").split()
            planes = y.tobytes() + u.resize(half).tobytes() + v.resize(half).tobytes()
            out.write((b"FRAME\n" + planes) * (fps * seconds_each))
    return path


@contextlib.contextmanager
def camera_browser(video: Path, url: str):
    """A Chromium page at `url` whose camera plays `video`, camera permission granted."""
    from playwright.sync_api import sync_playwright
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.grant_permissions(["camera"])
            page = context.new_page()
            page.goto(url)
            yield page
        finally:
            browser.close()


def live_caption(page) -> str:
    return page.input_value("#live-caption textarea")


def start_live(page):
    """Open the live panel, start the camera and wait for the first caption; returns the camera."""
    page.get_by_text("Live camera: captions as you move").click()
    camera = page.locator("#live-camera")
    camera.scroll_into_view_if_needed()
    camera.get_by_text("Click to Access Webcam").click()
    camera.locator("button").filter(has_text="Record").first.click(timeout=30_000)
    page.wait_for_function("() => document.querySelector('#live-caption textarea').value", timeout=30_000)
    return camera


def watch_live(page, seconds: float) -> tuple[list[str], str, float]:
    """The captions the page showed over `seconds` (each change once), its note, and the frames per
    second that note reports (the page counts frames captioned over its last few seconds)."""
    captions, start = [], time.monotonic()
    while time.monotonic() - start < seconds:
        text = live_caption(page)
        if text and (not captions or captions[-1] != text):
            captions.append(text)
        time.sleep(0.05)
    note = page.locator("#live-note").inner_text()
    return captions, note, float(note.split(" frames per second")[0].split()[-1])
