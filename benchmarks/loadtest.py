"""Load test: many gradio_client clients against a local app server (`make loadtest`).

Starts `python app.py` in its own process, warms it up, then N clients each send M greedy
/caption requests at once. Checks every request is answered without error, every caption equals
the single-client caption of the same image, and the server's resident memory after the run is
at most 1.2 x what it was after warm-up. Reports where a request's time went (upload and queue:
Gradio's profiling; image decoding, waiting for the model, the model call and the rest of the
event, "pictures": the server's own account, captioner/web/timings.py) and the batch sizes the
model saw. Then a hostile burst: four attacks at a time (a
progressive-JPEG scan bomb, a GIF comment in 1-byte blocks and a PNG whose EXIF tags all point at
one 9 MB blob, all refused, and a 40 MP float TIFF, captioned within its budget) while one client
captions greedily; its slowest caption must take at most LONE_LIMIT_S. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# gradio_client makes a new httpx client for each call (an upload, a request, its event stream),
# and each loads the CA bundle into a new SSL context: 42% of the clients' CPU (py-spy), on the
# same 2 cores as the server. One context, made once, serves every call (these are plain http).
SHARED_TLS = ssl.create_default_context()
CLIENT = dict(verbose=False, ssl_verify=SHARED_TLS)   # passed on as httpx's `verify`
LONE_LIMIT_S = 1.0   # a lone greedy caption beside the hostile burst
sys.path.insert(0, str(ROOT))   # captioner.options, for the hostile requests' parameters


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    """CPU seconds used so far by a process and every process under it (the server's image
    decoding workers), those that are still running."""
    tick, total, children = os.sysconf("SC_CLK_TCK"), 0.0, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:                      # ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append((int(stat.parent.name), fields))
    todo = [pid]
    own = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    total += (int(own[11]) + int(own[12])) / tick
    while todo:
        for child, fields in children.get(todo.pop(), []):
            total += (int(fields[11]) + int(fields[12])) / tick
            todo.append(child)
    return total


def start_server(checkpoint: str | None, port: int, timings: Path | None = None) -> subprocess.Popen:
    """`python app.py` on a loopback port; with `timings`, each request's times are kept (that
    file, and Gradio's profiling routes, which the load test reads)."""
    command = [sys.executable, str(ROOT / "app.py")] + (["--checkpoint", checkpoint] if checkpoint else [])
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    if timings:
        env |= {"CAPTIONER_TIMINGS": str(timings), "GRADIO_PROFILING": "1"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited: {server.stderr.read()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("the app did not start in 180 s")


def run(clients: int, requests: int, images: list[str], checkpoint: str | None = None,
        hostile_seconds: float = 20) -> dict:
    from gradio_client import Client, handle_file
    from captioner.web.serving import free_port
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        timings = Path(folder) / "timings.jsonl"
        server = start_server(checkpoint, port, timings)
        url = f"http://127.0.0.1:{port}/"
        try:
            single = Client(url, **CLIENT)
            expected = {image: single.predict(handle_file(image), api_name="/caption")[0] for image in images}
            for image in images:                                   # warm-up: every image once more
                single.predict(handle_file(image), api_name="/caption")
            rss_warm = rss_mb(server.pid)
            timings.write_text("")                                 # the crowd's requests only
            began, cpu = time.time(), (cpu_s(server.pid), time.process_time())
            outcomes, wall = crowd(url, clients, requests, images, expected)
            rss_after = rss_mb(server.pid)
            cpu = {"server_cpu_ms_per_request": round(1000 * (cpu_s(server.pid) - cpu[0]) / len(outcomes), 1),
                   "clients_cpu_ms_per_request": round(1000 * (time.process_time() - cpu[1]) / len(outcomes), 1)}
            breakdown = where_the_time_went(url, timings, began)
            hostile = hostile_burst(url, images[0], hostile_seconds) if hostile_seconds else {}
        finally:
            server.terminate()
            server.wait(timeout=30)
    latencies = sorted(t for t, _, _ in outcomes)
    errors = [e for _, _, e in outcomes if e]
    return {"clients": clients, "requests_per_client": requests, "requests": len(outcomes),
            "answered": len(outcomes) - len(errors), "errors": errors[:5], "error_count": len(errors),
            "captions_identical": all(ok for _, ok, _ in outcomes),
            "latency_p50_ms": round(1000 * statistics.median(latencies), 1),
            "latency_p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
            "throughput_per_s": round(len(outcomes) / wall, 2), "wall_s": round(wall, 1),
            "rss_after_warmup_mb": round(rss_warm, 1), "rss_after_run_mb": round(rss_after, 1),
            "rss_ratio": round(rss_after / rss_warm, 3), **cpu, **breakdown, **hostile}


def crowd(url: str, clients: int, requests: int, images: list[str], expected: dict) -> tuple[list, float]:
    """`clients` gradio_client clients at once, each sending `requests` greedy /caption requests in
    turn -> ([(latency s, caption as expected, error)], wall time s)."""
    from gradio_client import Client, handle_file

    def one_client(k: int) -> list[tuple[float, bool, str]]:
        client, results = Client(url, **CLIENT), []
        for r in range(requests):
            image = images[(k + r) % len(images)]
            start = time.perf_counter()
            try:
                caption = client.predict(handle_file(image), api_name="/caption")[0]
                results.append((time.perf_counter() - start, caption == expected[image], ""))
            except Exception as error:   # counted, not raised: the report lists every failure
                results.append((time.perf_counter() - start, False, repr(error)[:200]))
        return results

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        outcomes = [r for rs in pool.map(one_client, range(clients)) for r in rs]
    return outcomes, time.perf_counter() - start


def where_the_time_went(url: str, timings: Path, since: float) -> dict:
    """Median and mean ms per request of each stage (upload, queue, decode, model_wait, model,
    pictures) and the model calls per batch size, for the requests since `since` (time.time())."""
    import httpx
    profiled = httpx.get(f"{url}gradio_api/profiling/traces", timeout=30).json()
    traces = [t for t in profiled if t["timestamp"] >= since and t["fn_name"] != "gradio_file_upload"]
    upload = httpx.get(f"{url}gradio_api/profiling/summary", timeout=30).json().get("upload", {})
    lines = [json.loads(line) for line in timings.read_text().splitlines() if line.strip()]
    lines = [line for line in lines if "model_s" in line]      # captions made (not refusals)
    stages = {"queue": [t["queue_wait_ms"] for t in traces],
              **{name: [1000 * line[f"{field}_s"] for line in lines]
                 for name, field in (("decode", "decode"), ("model_wait", "wait"), ("model", "model"))},
              "pictures": [1000 * (line["total_s"] - line["decode_s"] - line["wait_s"] - line["model_s"])
                           for line in lines]}
    sizes: dict[int, float] = {}
    for line in lines:                    # a call of b images answers b requests
        sizes[line["batch"]] = sizes.get(line["batch"], 0) + 1 / line["batch"]
    calls = {size: round(count) for size, count in sorted(sizes.items())}
    # Gradio's traces leave out an upload's time: its summary gives it (warm-up's few uploads too).
    measured = {"upload": {"p50": round(upload["p50"], 1), "mean": round(upload["mean"], 1)}} if upload else {}
    return {"stage_ms": measured | {name: {"p50": round(statistics.median(v), 1), "mean": round(statistics.mean(v), 1)}
                                    for name, v in stages.items() if v},
            "model_calls_by_batch_size": calls,
            "mean_batch": round(sum(s * n for s, n in calls.items()) / max(1, sum(calls.values())), 2)}


def hostile_files(folder: Path) -> list[Path]:
    """A scan bomb (6000x6000, 5,000 repeats of one scan) and a float TIFF just under 40 MP."""
    import io
    import numpy as np
    from PIL import Image
    data = io.BytesIO()
    Image.new("L", (6000, 6000), 128).save(data, "JPEG", progressive=True, quality=50)
    data = data.getvalue()
    scan = data[data.rfind(b"\xff\xda"):data.rfind(b"\xff\xd9")]
    (folder / "bomb.jpg").write_bytes(data[:data.rfind(b"\xff\xd9")] + scan * 5000 + b"\xff\xd9")
    Image.fromarray(np.full((6300, 6300), 0.5, np.float32), "F").save(folder / "float.tif",
                                                                       compression="tiff_adobe_deflate")
    return [folder / "bomb.jpg", folder / "float.tif"]


def parser_bombs(folder: Path) -> list[Path]:
    """Small files that reach quadratic corners of Pillow's parsers (found by the third review):
    a GIF comment in 1-byte sub-blocks (2 MB: 34 s of CPU in-process), EXIF tags that all point at
    one 9 MB blob (in a PNG and as a TIFF: a copy per tag, about 1 and 2 GB), and BMP run-length
    rows 39 million pixels wide ended at once (RLE8 and RLE4: Pillow pads them a byte at a time)."""
    import io
    import struct
    import zlib
    from PIL import Image

    def tiff_blob(tags: int, blob: int, image: bool = False) -> bytes:
        """A little-endian TIFF whose `tags` UNDEFINED tags all point at one blob (with `image`, an
        8x8 grey image's own tags first, so Pillow takes it for a picture)."""
        own = [(256, 3, 1, 8), (257, 3, 1, 8), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 0), (277, 3, 1, 1), (278, 3, 1, 8), (279, 4, 1, 64)] if image else []
        count = len(own) + tags
        pixels = 8 + 2 + 12 * count + 4
        start = pixels + (64 if image else 0)
        entries = b"".join(struct.pack("<HHII", tag, kind, n, pixels if tag == 273 else value)
                           for tag, kind, n, value in own)
        entries += b"".join(struct.pack("<HHII", 0x9000 + k, 7, blob, start) for k in range(tags))
        return (b"II*\0" + struct.pack("<IH", 8, count) + entries + b"\0" * 4
                + (b"\x80" * 64 if image else b"") + b"\0" * blob)

    def png(extra: bytes = b"") -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (8, 8), (90, 120, 60)).save(out, "PNG")
        data = out.getvalue()
        return data[:-12] + extra + data[-12:]                    # before IEND

    def bmp_rle(bits: int, width: int = 39_000_000) -> bytes:     # one pixel, end of line, end
        body, colours = b"\x01\x00\x00\x00\x00\x01", 2 ** bits
        start = 14 + 40 + 4 * colours
        dib = struct.pack("<IiiHHIIiiII", 40, width, 1, 1, bits, 1 if bits == 8 else 2, len(body), 0, 0, colours, 0)
        return b"BM" + struct.pack("<IHHI", start + len(body), 0, 0, start) + dib + b"\0" * 4 * colours + body

    gif = io.BytesIO()
    Image.new("P", (1, 1)).save(gif, "GIF")
    gif = gif.getvalue()
    header = 13 + (3 * 2 ** ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)
    exif = tiff_blob(100, 9 * 2 ** 20)
    files = {"comment.gif": gif[:header] + b"\x21\xfe" + b"\x01x" * 2 ** 20 + b"\0" + gif[header:],
             "exif.png": png(struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif))),
             "tags.tif": tiff_blob(100, 9 * 2 ** 20, image=True), "rle8.bmp": bmp_rle(8), "rle4.bmp": bmp_rle(4)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in files]


def call_raw(http, url: str, first) -> str:
    """/caption through the plain HTTP API (a client can send what gradio_client would not)."""
    from captioner.options import DecodingOptions
    data = [first, *[knob.default if knob.name != "max_length" else 24 for knob in DecodingOptions.knobs()]]
    event = http.post(f"{url}gradio_api/call/caption", json={"data": data}).json()["event_id"]
    return http.get(f"{url}gradio_api/call/caption/{event}").text


def hostile_burst(url: str, image: str, seconds: float = 20) -> dict:
    """Four hostile requests at a time for `seconds`, while one client captions an image greedily."""
    import httpx
    from gradio_client import Client, handle_file
    stop, refused, failures = threading.Event(), [], []

    def attacker(attack):
        """Uploads its file once (the server keeps it ten minutes, and one client may upload
        200 MB in that time), then asks for its caption again and again."""
        with httpx.Client(timeout=60) as http:
            with open(attack, "rb") as file:
                path = http.post(f"{url}gradio_api/upload", files={"files": file}).json()[0]
            while not stop.is_set():
                try:
                    refused.append(attack_once(http, attack, path))
                except Exception as error:   # counted, not raised: the report shows it
                    failures.append(repr(error)[:200])
                    refused.append(False)

    def attack_once(http, attack: Path, path: str) -> bool:
        """One attack -> whether the server handled it as it should."""
        answer = call_raw(http, url, {"path": path, "meta": {"_type": "gradio.FileData"}})
        # The 40 MP float TIFF is captioned within its budget; the rest are refused.
        return ("event: error" in answer) != (attack.suffix == ".tif")

    with tempfile.TemporaryDirectory() as folder:
        bombs = {path.name: path for path in parser_bombs(Path(folder))}
        attacks = hostile_files(Path(folder)) + [bombs["comment.gif"], bombs["exif.png"]]
        threads = [threading.Thread(target=attacker, args=(attack,)) for attack in attacks]
        for thread in threads:
            thread.start()
        client, times, start = Client(url, **CLIENT), [], time.perf_counter()
        while time.perf_counter() - start < seconds:
            begin = time.perf_counter()
            client.predict(handle_file(image), api_name="/caption")
            times.append(time.perf_counter() - begin)
        stop.set()
        for thread in threads:
            thread.join()
    return {"hostile_requests": len(refused), "hostile_all_handled": bool(refused) and all(refused),
            "hostile_failures": failures[:3],
            "lone_caption_during_hostile_p50_s": round(statistics.median(times), 3),
            "lone_caption_during_hostile_max_s": round(max(times), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--images", nargs="*", default=None, help="default: assets/examples")
    args = parser.parse_args()
    images = args.images or [str(p) for p in sorted((ROOT / "assets" / "examples").glob("*.jpg"))][:8]
    report = run(args.clients, args.requests, images, args.checkpoint)
    print(json.dumps(report))
    ok = (report["error_count"] == 0 and report["captions_identical"] and report["rss_ratio"] <= 1.2
          and report.get("hostile_all_handled", True)
          and report.get("lone_caption_during_hostile_max_s", 0) <= LONE_LIMIT_S)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
