"""The server against the attacks of the second security review, through its public HTTP API.

Traffic goes only to loopback and to a test host on a carrier-grade NAT address (100.64.x.y)
inside a network namespace this module creates and removes.
"""
import io
import os
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from captioner.web import serving
from http_api import HOST_IP, OPTIONS, POSITION, call, file_data, upload


@pytest.fixture(scope="module")
def server(tiny_app):
    return tiny_app


# --- 1-3: a URL in a file field never reaches Gradio's own downloader ---------------------------

@pytest.mark.parametrize("route", ["/internal.json", "/bomb.gz", "/slow.png"])
def test_a_url_in_a_file_field_is_refused_and_never_fetched(server, test_host, route):
    # Before: Gradio downloaded it (an internal JSON read back, a 2 MB gzip became 2 GB on disk,
    # a byte every 2 s held a queue slot for a minute). Now: refused at once, the host sees nothing.
    url = f"http://{HOST_IP}:8080{route}"
    seen = test_host.read_text()
    event, payload = call(server, "caption", [file_data(url)])
    assert event == "error" and "takes an uploaded file only" in payload["error"]
    assert "/caption_url" in payload["error"]
    data = ["https://example.invalid/a.png", *OPTIONS]
    data[POSITION["seed"]] = file_data(url)
    event, payload = call(server, "caption_url", data)
    assert event == "error" and "takes an uploaded file only" in payload["error"]   # any parameter
    time.sleep(0.3)
    assert test_host.read_text() == seen, "the test host saw a request"


def test_the_url_box_refuses_the_same_host_with_our_fetcher(server, test_host):
    seen = test_host.read_text()
    event, payload = call(server, "caption_url", [f"http://{HOST_IP}:8080/internal.json"])
    assert event == "error" and "not allowed" in payload["error"]
    assert test_host.read_text() == seen


# --- 4: a progressive JPEG scan bomb is refused quickly -----------------------------------------

def test_a_scan_bomb_upload_is_refused_with_a_message(server, tmp_path):
    # Before: 500 scans of a 6000x6000 JPEG took 17 s to decode (refused before decoding: test_images).
    data = io.BytesIO()
    Image.new("L", (6000, 6000), 128).save(data, "JPEG", progressive=True, quality=50)
    data = data.getvalue()
    scan = data[data.rfind(b"\xff\xda"):data.rfind(b"\xff\xd9")]
    (tmp_path / "bomb.jpg").write_bytes(data[:data.rfind(b"\xff\xd9")] + scan * 500 + b"\xff\xd9")
    event, payload = call(server, "caption", [upload(server, tmp_path / "bomb.jpg")])
    assert event == "error" and "too slow to decode" in payload["error"]


# --- 6: uploads are limited per request -------------------------------------------------------

def test_uploads_are_limited_in_count_and_total_size(server, tmp_path):
    url = server.local_url.rstrip("/") + "/gradio_api/upload"
    small = io.BytesIO()
    Image.new("RGB", (8, 8)).save(small, "PNG")
    with httpx.Client(timeout=30) as http:
        one = http.post(url, files=[("files", ("a.png", small.getvalue()))])
        assert one.status_code == 200 and len(one.json()) == 1
        # Before: 30 files of 9.9 MB in one request were accepted.
        many = http.post(url, files=[("files", (f"{n}.png", small.getvalue())) for n in range(30)])
        assert many.status_code == 413 and "at most 1 file" in many.text
        port = int(url.split(":")[2].split("/")[0])           # a declared 50 MB: refused before reading
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 52428800\r\n"
                        b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")
            reply = b""
            while b"per request" not in reply and (chunk := raw.recv(4096)):
                reply += chunk
            reply = reply.decode()
        assert reply.startswith("HTTP/1.1 413") and "MB per request" in reply

        # No Content-Length: counted as it comes. A field part (no filename) is what only this count
        # stops: Gradio caps file parts at MAX_FILE_SIZE but keeps a field's bytes in memory, unbounded.
        def chunks():
            yield b"--b\r\nContent-Disposition: form-data; name=\"files\"\r\n\r\n"
            for _ in range(12):
                yield b"\0" * 2 ** 20
        streamed = http.post(url, content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert streamed.status_code == 413 and "MB per request" in streamed.text


def test_uploads_and_made_files_are_deleted_within_ten_minutes(server):
    # Before: kept for an hour (delete_cache=(1800, 3600)).
    frequency, age = server.delete_cache
    assert frequency <= 60 and age <= serving.KEEP_FILES_S <= 600


# --- 9: every refusal carries a message -------------------------------------------------------

@pytest.mark.parametrize("name, value, field", [
    ("seed", float("nan"), "Seed"), ("seed", float("inf"), "Seed"), ("seed", "abc", "Seed"),
    ("temperature", "x", "Temperature")])
def test_bad_values_are_refused_with_a_message_naming_the_field(server, coco_fixture, name, value, field):
    # Before: {"error": null}.
    image = upload(server, sorted(coco_fixture[1].iterdir())[0])
    data = [image, *OPTIONS]
    data[POSITION["strategy"]], data[POSITION[name]] = "sample", value
    event, payload = call(server, "caption", data)
    assert event == "error" and payload["error"] and field in payload["error"]


@pytest.mark.parametrize("path", ["/etc/passwd", "../../etc/passwd", "assets/model/config.json"])
def test_server_files_are_refused_with_a_message(server, path):
    event, payload = call(server, "caption", [file_data(path)])
    assert event == "error" and "must be uploaded to this server first" in payload["error"]


# --- 10: no server path reaches a client ------------------------------------------------------

def test_no_server_path_reaches_a_client(server, trained_checkpoint, tmp_path):
    config = httpx.get(server.local_url.rstrip("/") + "/config", timeout=30).text
    for path in (str(trained_checkpoint[0].resolve()), os.getcwd()):
        assert path not in config
    fake = tmp_path / "photo.png"
    fake.write_text("not a picture")
    messages = [call(server, "caption", [upload(server, fake)])[1]["error"],
                call(server, "caption", [file_data("http://127.0.0.1:1/x.png")])[1]["error"],
                call(server, "caption", [file_data("/etc/passwd")])[1]["error"]]
    for message in messages:
        assert message and "/tmp" not in message and os.getcwd() not in message and "/gradio" not in message


# --- a lone caption is answered during a burst of hostile requests -------------------------------
# (how fast: `make loadtest` measures it, benchmarks/loadtest.py)

def test_a_caption_is_answered_during_hostile_requests(server, coco_fixture, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from loadtest import hostile_files
    hostile = [upload(server, path) for path in hostile_files(tmp_path)]
    hostile += [file_data("http://127.0.0.1:9/slow.png"), file_data("/etc/passwd")]
    image = upload(server, sorted(coco_fixture[1].iterdir())[0])
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as pool:
        burst = [pool.submit(call, server, "caption", [bad]) for bad in hostile * 2]
        event, payload = call(server, "caption", [image])
        outcomes = [future.result()[0] for future in burst]
    assert event == "complete" and payload[0]
    # The 40 MP float TIFF (second) is captioned within its memory budget; the rest are refused.
    assert outcomes == ["error", "complete", "error", "error"] * 2
