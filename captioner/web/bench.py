"""`make bench`: `python -m captioner.web.bench [bench's flags]` is `python -m captioner bench` with
the page's own figures too (the live camera, through the page's live event and in Chromium).

The core's command line never loads Gradio, so its `bench` measures the package alone; the web
page's figures are measured here, where the page is, and join the same table (captioner.bench).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

import captioner

from .page import Page
from .serving import free_port


def bench_live(model, image_path, seconds: float = 3.0) -> dict:
    """Live camera mode: frames per second through the page's own live event, frames back to back
    (a 640x480 camera frame, uploaded as the browser sends it)."""
    page, live, frames = Page(model), None, 0
    with tempfile.TemporaryDirectory() as folder:
        frame = Path(folder) / "frame.png"
        Image.open(image_path).convert("RGB").resize((640, 480)).save(frame)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            *_, live = page.live_caption(str(frame), live)
            frames += 1
        return {"live_fps": round(frames / (time.perf_counter() - start), 1)}


def bench_browser_live(model, image_path, seconds: float = 10.0) -> dict:
    """Live camera mode as a visitor sees it: the app served on loopback, Chromium's fake camera
    playing the example pictures (one a second), the frames per second the page's note reports
    after `seconds`, and how many distinct captions it showed."""
    from ..assets import example_images
    from .fake_camera import CHROMIUM, camera_browser, start_live, watch_live, write_y4m
    if not os.path.exists(CHROMIUM):
        print(f"browser live figure skipped: {CHROMIUM} is missing (make system-deps installs it)", file=sys.stderr)
        return {}
    import app                                   # the page itself, as `python app.py` serves it
    with tempfile.TemporaryDirectory() as folder:
        video = write_y4m(Path(folder) / "camera.y4m", example_images()[:10] or [image_path])
        demo = app.build_app(model, examples_dir=Path(folder))
        app.serve(demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
        try:
            with camera_browser(video, demo.local_url) as page:
                start_live(page)
                captions, _, fps = watch_live(page, seconds)
        finally:
            demo.close()
    return {"browser_live_fps": fps, "browser_live_captions": len(set(captions))}


SECTIONS = (bench_live, bench_browser_live)   # the page's figures, measured after the core's end to end ones


def main(argv=None) -> int:
    """`python -m captioner bench` (the same flags and output), with SECTIONS measured too."""
    captioner.import_tensorflow_quietly()        # CAPTIONER_TF_LOGS=1 shows TensorFlow's C++ start-up log
    from captioner.__main__ import build_parser, run
    args = build_parser().parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return run(args, sections=SECTIONS)


if __name__ == "__main__":
    sys.exit(main())
