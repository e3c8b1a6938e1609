"""Shared fixtures: a tiny COCO-format dataset the tests draw themselves, and a model trained on it."""
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

import http_api

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# benchmarks/loadtest.py makes the hostile files the attack tests send
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
# Every model the tests train gets its own LiteRT conversion (captioner/litert.py): they go to a
# folder of this test run (its subprocesses inherit it), not the user's cache, and leave with it.
_LITERT_CACHE = tempfile.mkdtemp(prefix="captioner-test-cache-")
os.environ.setdefault("CAPTIONER_CACHE", _LITERT_CACHE)
atexit.register(shutil.rmtree, _LITERT_CACHE, ignore_errors=True)

SHAPES = {"square": "rectangle", "circle": "ellipse"}
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60)}


def make_coco_fixture(root, images: int = 12, size: int = 96, seed: int = 0):
    """COCO 2014 layout: `root/train2014/COCO_train2014_%012d.jpg` and `captions_train2014.json`."""
    rng = np.random.default_rng(seed)
    folder = root / "train2014"
    folder.mkdir(parents=True, exist_ok=True)
    entries, notes = [], []
    for n in range(images):
        colour, shape = list(COLOURS)[n % 3], list(SHAPES)[(n // 3) % 2]
        image = Image.new("RGB", (size, size), (235, 235, 225))
        x, y = rng.integers(5, size // 2, size=2)
        getattr(ImageDraw.Draw(image), SHAPES[shape])([x, y, x + size // 2, y + size // 2], fill=COLOURS[colour])
        image_id = 1000 + n
        name = f"COCO_train2014_{image_id:012d}.jpg"
        image.save(folder / name, quality=95)
        entries.append({"id": image_id, "file_name": name, "width": size, "height": size})
        for k, text in enumerate([f"a {colour} {shape}", f"A {colour} {shape} on a white background.",
                                  f"there is a {colour} {shape}"]):
            notes.append({"id": len(notes) + 1, "image_id": image_id, "caption": text})
    captions = root / "annotations" / "captions_train2014.json"
    captions.parent.mkdir(parents=True, exist_ok=True)
    captions.write_text(json.dumps({"images": entries, "annotations": notes}))
    return captions, folder


@pytest.fixture(scope="session")
def coco_fixture(tmp_path_factory):
    return make_coco_fixture(tmp_path_factory.mktemp("coco"))


@pytest.fixture(scope="session")
def trained_checkpoint(coco_fixture, tmp_path_factory):
    """A small model trained for a few epochs on the fixture (seconds on two cores)."""
    from captioner.config import ModelConfig, TrainConfig
    from captioner.train import train
    captions, images = coco_fixture
    out = tmp_path_factory.mktemp("run") / "ckpt"
    config = TrainConfig(captions=str(captions), images=str(images), out=str(out), epochs=12,
                         batch_size=8, learning_rate=1e-2, val_fraction=0.2, seed=0)
    model = ModelConfig(embedding_dim=32, units=64, dropout=0.0, max_length=8)
    history = train(config, model, out.parent / "cache", progress=False)
    return out, history


def free_port() -> int:
    from captioner.web.serving import free_port as port   # Gradio loads only for tests that serve
    return port()


def start_app(model, examples_dir):
    """The app over `model`, served on a free loopback port as `python app.py` serves it."""
    import app
    demo = app.build_app(model, examples_dir=examples_dir)
    app.serve(demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo


@pytest.fixture(scope="session")
def tiny_app(trained_checkpoint, tmp_path_factory):
    """The app over the tiny fixture model with no examples (the API tests share it)."""
    from captioner import Captioner
    demo = start_app(Captioner.load(trained_checkpoint[0]).warm_up(), tmp_path_factory.mktemp("no-examples"))
    yield demo
    demo.close()


# --- a test host inside a network namespace --------------------------------------------------

TEST_HOST = textwrap.dedent("""
    import gzip, sys, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    log = open(sys.argv[1], "a", buffering=1)
    BOMB = gzip.compress(b"\\0" * (50 * 2 ** 20))
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass
        def do_GET(self):
            log.write(self.path + "\\n")
            if self.path.startswith("/bomb"):
                self.send_response(200); self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(BOMB))); self.end_headers(); self.wfile.write(BOMB)
            elif self.path.startswith("/slow"):
                self.send_response(200); self.end_headers()
                for _ in range(30):
                    self.wfile.write(b"x"); self.wfile.flush(); time.sleep(1)
            else:
                body = b'{"internal": "secret"}'
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                self.wfile.write(body)
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
""")


@pytest.fixture(scope="session")
def test_host(tmp_path_factory):
    """An HTTP server at http_api.HOST_IP:8080 in a network namespace (veth pair), logging each request."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("a network namespace needs root and iproute2's `ip` (not available here)")
    name, tag = f"capt{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:5]
    outer, inner = f"vca{tag}", f"vcb{tag}"
    folder = tmp_path_factory.mktemp("host")
    log = folder / "requests.log"
    log.touch()
    (folder / "host.py").write_text(TEST_HOST)
    setup = [["ip", "netns", "add", name], ["ip", "link", "add", outer, "type", "veth", "peer", "name", inner],
             ["ip", "link", "set", inner, "netns", name], ["ip", "addr", "add", f"{http_api.OUTER_IP}/30", "dev", outer],
             ["ip", "link", "set", outer, "up"],
             ["ip", "netns", "exec", name, "ip", "addr", "add", f"{http_api.HOST_IP}/30", "dev", inner],
             ["ip", "netns", "exec", name, "ip", "link", "set", inner, "up"]]
    process = None
    try:
        for command in setup:
            subprocess.run(command, check=True, capture_output=True)
        process = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, str(folder / "host.py"), str(log)])
        for _ in range(100):                                   # wait until it answers
            try:
                assert httpx.get(f"http://{http_api.HOST_IP}:8080/ready", timeout=1).status_code == 200
                break
            except (httpx.HTTPError, AssertionError):
                time.sleep(0.1)
        assert log.read_text() == "/ready\n", "the test host must be reachable, or the test proves nothing"
        yield log
    finally:
        if process:
            process.kill()
            process.wait()
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", outer], capture_output=True)




@pytest.fixture(scope="session")
def shipped_vocab():
    """The shipped model's vocabulary (the copy path's and the evidence gate's tables extend it)."""
    from captioner.vocab import Vocabulary
    return Vocabulary.load(Path(__file__).resolve().parent.parent / "assets" / "model" / "vocab.json")


def class_index(imagenet_name: str) -> int:
    """The index of the ImageNet class whose first name is this ("golden retriever")."""
    from captioner.class_names import class_names
    return next(row.index for row in class_names() if row.imagenet == imagenet_name)
