"""The URL fetcher against a loopback server the test starts (allowed explicitly; the app never is)."""
import io
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from captioner import images
from captioner.images import InputError, check_address, fetch_url, load_image_url

PNG = io.BytesIO()
Image.new("RGB", (20, 10), (0, 128, 255)).save(PNG, format="PNG")
PNG = PNG.getvalue()
LOOPBACK = ("127.0.0.1",)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        route = self.path.split("?")[0]
        if route == "/image.png":
            self._send(200, PNG, "image/png")
        elif route == "/text":
            self._send(200, b"<html>not an image</html>", "image/png")
        elif route == "/big":
            self._send(200, b"\0" * 3000, "image/png")
        elif route == "/big-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(5):
                self.wfile.write(b"3e8\r\n" + b"\0" * 1000 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif route == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"\0" * 10)
                self.wfile.flush()
                time.sleep(0.1)
        elif route.startswith("/hop/"):
            left = int(route.rsplit("/", 1)[1])
            self._redirect("/image.png" if left == 0 else f"/hop/{left - 1}")
        elif route == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data")
        elif route == "/to-private":
            self._redirect("http://10.1.2.3/x.png")
        else:
            self._send(404, b"no", "text/plain")

    def _send(self, code, body, kind):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, where):
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_loopback_is_refused_unless_explicitly_allowed(server):
    with pytest.raises(InputError, match="not allowed"):
        fetch_url(server + "/image.png")
    image = load_image_url(server + "/image.png", allowed_addresses=LOOPBACK)
    assert image.size == (20, 10) and image.mode == "RGB"


@pytest.mark.parametrize("path, cap, message", [
    ("/big", 2000, "larger than"), ("/big-chunked", 2000, "larger than"),
    ("/text", 10_000, "Not an image"), ("/nothing", 10_000, "HTTP error 404"),
])
def test_size_cap_content_and_status(server, path, cap, message):
    with pytest.raises(InputError, match=message):
        load_image_url(server + path, max_bytes=cap, allowed_addresses=LOOPBACK)


def test_total_timeout_is_a_deadline_not_per_read(server):
    start = time.monotonic()
    with pytest.raises(InputError, match="Timed out"):
        fetch_url(server + "/slow", timeout=1.0, allowed_addresses=LOOPBACK)
    assert time.monotonic() - start < 2.5


def test_redirects_are_limited_and_each_hop_is_checked(server):
    assert load_image_url(server + "/hop/2", allowed_addresses=LOOPBACK).size == (20, 10)   # 3 redirects
    with pytest.raises(InputError, match="Too many redirects"):
        fetch_url(server + "/hop/3", allowed_addresses=LOOPBACK)                           # 4 redirects
    for hop in ("/to-metadata", "/to-private"):
        with pytest.raises(InputError, match="not allowed"):
            fetch_url(server + hop, allowed_addresses=LOOPBACK)


@pytest.mark.parametrize("url, message", [
    ("ftp://example.com/a.png", "Only http and https"), ("file:///etc/passwd", "Only http and https"),
    ("javascript:alert(1)", "Only http and https"), ("http://user:pw@example.com/a.png", "user name"),
    ("http:///nohost", "no host"), ("http://[::1", "not a valid URL"),
    ("http://localhost/", "not allowed"), ("http://2130706433/", "not allowed"),
    ("http://0x7f000001/", "not allowed"), ("http://0177.0.0.1/", "not allowed"), ("http://127.1/", "not allowed"),
    ("http://[::ffff:127.0.0.1]/", "not allowed"), ("http://[::1]/", "not allowed"),
    ("http://169.254.169.254/latest/meta-data", "not allowed"), ("http://[fd00:ec2::254]/", "not allowed"),
    ("http://100.100.100.200/", "not allowed"), ("http://0.0.0.0/", "not allowed"),
    ("http://no-such-host.invalid/", "Could not resolve"),
])
def test_refused_urls(url, message):
    with pytest.raises(InputError, match=message):
        fetch_url(url, timeout=2)


@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("127.0.0.1", False), ("10.0.0.1", False),
    ("172.16.0.1", False), ("192.168.1.1", False), ("100.64.0.1", False), ("169.254.169.254", False),
    ("224.0.0.1", False), ("240.0.0.1", False), ("0.0.0.0", False), ("255.255.255.255", False),
    ("::1", False), ("::", False), ("fe80::1", False), ("fc00::1", False), ("ff02::1", False),
    ("::ffff:10.0.0.1", False), ("::ffff:8.8.8.8", True), ("2002:7f00:1::", False), ("2002:808:808::", True),
    ("64:ff9b::a00:1", False), ("198.18.0.1", False), ("192.0.2.1", False),
])
def test_check_address(address, public):
    if public:
        check_address(address)
    else:
        with pytest.raises(InputError):
            check_address(address)


def test_host_is_resolved_once_per_hop_and_the_checked_address_is_used(server, monkeypatch):
    calls = []
    real = socket.getaddrinfo

    def counting(host, *args, **kwargs):
        calls.append(host)
        return real(host, *args, **kwargs)
    monkeypatch.setattr(images.socket, "getaddrinfo", counting)
    port = server.rsplit(":", 1)[1]
    assert load_image_url(f"http://localhost:{port}/hop/1", allowed_addresses=LOOPBACK + ("::1",)).size == (20, 10)
    names = [host for host in calls if not host[0].isdigit() and ":" not in host]
    assert names == ["localhost"] * 3                      # one lookup per hop; httpx only gets the IP
    assert set(calls) - {"localhost"} <= {"127.0.0.1", "::1"}
