"""The URL fetcher against a loopback server the test starts (allowed explicitly; the app never is)."""
import io
import ipaddress
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import certifi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from captioner.web import urls
from captioner.images import InputError
from captioner.web.urls import check_address, fetch_url, load_image_url

PNG = io.BytesIO()
Image.new("RGB", (20, 10), (0, 128, 255)).save(PNG, format="PNG")
PNG = PNG.getvalue()
LOOPBACK = {"127.0.0.1"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        route = self.path.split("?")[0]
        try:
            self.ROUTES.get(route, Handler._route)(self, route)
        except (BrokenPipeError, ConnectionResetError):
            pass                                              # the client gave up, as it should

    def _route(self, route):
        if route.startswith("/hop/"):                        # /hop/N: N more redirects, then the image
            left = int(route.rsplit("/", 1)[1])
            self._redirect("/image.png" if left == 0 else f"/hop/{left - 1}")
        else:
            self._send(404, b"no such page", "text/plain")

    def _image(self, route):
        self._send(200, PNG, "image/png")

    def _text(self, route):
        self._send(200, b"<html>not an image</html>", "image/png")     # the header lies

    def _host(self, route):
        self._send(200, self.headers["Host"].encode(), "text/plain")

    def _big(self, route):
        self._send(200, b"\0" * 3000, "image/png")

    def _big_chunked(self, route):
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(5):
            self.wfile.write(b"3e8\r\n" + b"\0" * 1000 + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _big_unsized(self, route):                          # no length: the body ends at close
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"\0" * 5000)
        self.close_connection = True

    def _huge_declared(self, route):                        # claims 11 MB, sends 10 bytes, waits
        self.send_response(200)
        self.send_header("Content-Length", str(11 * 1024 * 1024))
        self.end_headers()
        self.wfile.write(b"\0" * 10)
        self.wfile.flush()
        time.sleep(3)

    def _lying_length(self, route):                         # claims 100 bytes, sends more
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b"\0" * 5000)

    def _slow_body(self, route):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(40):
            self.wfile.write(b"\0" * 10)
            self.wfile.flush()
            time.sleep(0.1)

    def _slow_headers(self, route):                         # a header byte every 0.1 s, for 4 s
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for byte in b"X-Padding: " + b"a" * 40:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.1)

    def _redirect(self, where):
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, code, body, kind):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


Handler.ROUTES = {
    "/image.png": Handler._image, "/text": Handler._text, "/host": Handler._host, "/big": Handler._big,
    "/big-chunked": Handler._big_chunked, "/big-unsized": Handler._big_unsized,
    "/huge-declared": Handler._huge_declared, "/lying-length": Handler._lying_length,
    "/slow-body": Handler._slow_body,
    "/slow-headers": Handler._slow_headers,
    "/to-metadata": lambda h, r: h._redirect("http://169.254.169.254/latest/meta-data"),
    "/to-private": lambda h, r: h._redirect("http://10.1.2.3/x.png"),
    "/to-mapped": lambda h, r: h._redirect("http://[::ffff:10.0.0.1]/x.png"),
    "/to-ftp": lambda h, r: h._redirect("ftp://example.com/x.png"),
    "/to-relative": lambda h, r: h._redirect("image.png"),
}


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


# --- the loopback server -----------------------------------------------------------------------

def test_loopback_is_refused_unless_explicitly_allowed(server):
    with pytest.raises(InputError, match=r"That address is not allowed \(private or local network\)"):
        fetch_url(server + "/image.png")
    assert load_image_url(server + "/image.png", allow_private=True).size == (20, 10)
    image = load_image_url(server + "/image.png", allow_ips=LOOPBACK)
    assert image.size == (20, 10) and image.mode == "RGB"
    assert fetch_url(server + "/image.png", allow_ips=LOOPBACK) == PNG


@pytest.mark.parametrize("path, cap, message", [
    ("/big", 2000, "larger than"), ("/big-chunked", 2000, "larger than"),
    ("/big-unsized", 2000, "larger than"), ("/text", 10_000, "Not an image"),
    ("/nothing", 10_000, "HTTP error 404 fetching the URL"),
])
def test_size_cap_content_and_status(server, path, cap, message):
    with pytest.raises(InputError, match=message):
        load_image_url(server + path, max_bytes=cap, allow_ips=LOOPBACK)


def test_a_declared_length_over_the_cap_is_refused_at_once(server):
    start = time.monotonic()
    with pytest.raises(InputError, match=r"The image is larger than 10 MB"):
        fetch_url(server + "/huge-declared", allow_ips=LOOPBACK)
    assert time.monotonic() - start < 1.0                  # the server would take 3 s to finish


def test_a_server_sending_more_than_it_declared_is_read_only_as_far_as_declared(server):
    assert fetch_url(server + "/lying-length", allow_ips=LOOPBACK) == b"\0" * 100


@pytest.mark.parametrize("path", ["/slow-body", "/slow-headers"])
def test_total_timeout_is_a_deadline_not_per_read(server, path):
    start = time.monotonic()
    with pytest.raises(InputError, match="Timed out fetching the URL"):
        fetch_url(server + path, timeout=1.0, allow_ips=LOOPBACK)
    assert time.monotonic() - start < 1.8


def test_redirects_are_limited_and_each_hop_is_checked(server):
    assert load_image_url(server + "/hop/2", allow_ips=LOOPBACK).size == (20, 10)       # 3 redirects
    assert load_image_url(server + "/to-relative", allow_ips=LOOPBACK).size == (20, 10)
    with pytest.raises(InputError, match=r"Too many redirects \(more than 3\)"):
        fetch_url(server + "/hop/3", allow_ips=LOOPBACK)                                 # 4 redirects
    with pytest.raises(InputError, match="Too many redirects"):
        fetch_url(server + "/hop/0", max_redirects=0, allow_ips=LOOPBACK)
    for hop in ("/to-metadata", "/to-private", "/to-mapped"):
        with pytest.raises(InputError, match="not allowed"):
            fetch_url(server + hop, allow_ips=LOOPBACK)
    with pytest.raises(InputError, match="Only http and https"):
        fetch_url(server + "/to-ftp", allow_ips=LOOPBACK)


# --- refused before any connection ------------------------------------------------------------

@pytest.mark.parametrize("url, message", [
    ("ftp://example.com/a.png", "Only http and https"), ("file:///etc/passwd", "Only http and https"),
    ("javascript:alert(1)", "Only http and https"), ("example.com/a.png", "Only http and https"),
    ("gopher://127.0.0.1:6379/_FLUSHALL", "Only http and https"),
    ("http://user:pw@example.com/a.png", "user name or password"), ("http://user@example.com/", "user name"),
    ("http://a\\@127.0.0.1/", "user name"),
    ("http:///nohost", "no host"), ("http://[::1", "not a valid URL"), ("http://example.com:99999/", "bad port"),
    ("http://localhost/", "not allowed"), ("http://127.0.0.1/", "not allowed"), ("http://127.1/", "not allowed"),
    ("http://2130706433/", "not allowed"), ("http://0x7f000001/", "not allowed"),
    ("http://0x7f.0.0.1/", "not allowed"), ("http://017700000001/", "not allowed"),
    # httpx's parser refuses octal dotted quads outright; getaddrinfo would read 127.0.0.1.
    ("http://0177.0.0.1/", "not a valid URL|not allowed"),
    ("http://[::ffff:127.0.0.1]/", "not allowed"), ("http://[::ffff:7f00:1]/", "not allowed"),
    ("http://[::1]/", "not allowed"), ("http://[::]/", "not allowed"), ("http://0.0.0.0/", "not allowed"),
    ("http://0/", "not allowed"), ("http://10.0.0.1/", "not allowed"), ("http://192.168.0.1:8080/", "not allowed"),
    ("http://100.64.0.1/", "not allowed"), ("http://[2002:7f00:1::]/", "not allowed"),
    ("http://[64:ff9b::a9fe:a9fe]/", "not allowed"),
    ("http://169.254.169.254/latest/meta-data", "not allowed"), ("http://[fd00:ec2::254]/", "not allowed"),
    ("http://100.100.100.200/", "not allowed"), ("http://168.63.129.16/", "not allowed"),
    ("https://127.0.0.1/", "not allowed"), ("HTTP://LOCALHOST/", "not allowed"),
    ("http://localhost./", "not allowed|Could not reach host"),   # resolves where DNS does
    ("http://no-such-host.invalid/", "Could not reach host no-such-host.invalid"),
])
def test_refused_urls(url, message):
    with pytest.raises(InputError, match=message):
        fetch_url(url, timeout=2)


@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True), ("1.1.1.1", True), ("2606:4700:4700::1111", True), ("2001:4860:4860::8888", True),
    ("::ffff:8.8.8.8", True), ("2002:808:808::", True), ("64:ff9b::808:808", True),
    ("127.0.0.1", False), ("127.255.255.254", False), ("10.0.0.1", False), ("172.16.0.1", False),
    ("172.31.255.255", False), ("192.168.1.1", False), ("100.64.0.1", False), ("100.127.255.254", False),
    ("169.254.169.254", False), ("169.254.0.1", False), ("100.100.100.200", False), ("168.63.129.16", False),
    ("192.0.0.192", False), ("224.0.0.1", False), ("239.255.255.250", False), ("240.0.0.1", False),
    ("0.0.0.0", False), ("0.1.2.3", False), ("255.255.255.255", False), ("198.18.0.1", False),
    ("192.0.2.1", False), ("198.51.100.1", False), ("203.0.113.1", False),
    ("::1", False), ("::", False), ("fe80::1", False), ("fe80::1%eth0", False), ("fc00::1", False),
    ("fd00:ec2::254", False), ("fec0::1", False), ("ff02::1", False), ("ff0e::1", False),
    ("2001:db8::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("::ffff:169.254.169.254", False),
    ("::127.0.0.1", False),                                      # IPv4-compatible (deprecated)
    ("2002:7f00:1::", False), ("2002:a00:1::", False), ("2002:a9fe:a9fe::", False),   # 6to4 wrapping private
    ("64:ff9b::7f00:1", False), ("64:ff9b::a00:1", False), ("64:ff9b:1::a00:1", False),   # NAT64
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),             # Teredo, client 127.0.0.1
    ("not an address", False), ("", False), ("127.0.0.1.", False),
])
def test_check_address(address, public):
    if public:
        check_address(address)
    else:
        with pytest.raises(InputError, match="not allowed"):
            check_address(address)


# --- one lookup per hop, and the connection goes where the check said --------------------------

def fake_dns(monkeypatch, answers):
    """getaddrinfo that answers host names from `answers` (a list per call, or a fixed list)."""
    calls = []
    real = socket.getaddrinfo

    def lookup(host, port, *args, **kwargs):
        calls.append(host)
        if host in answers:
            queue = answers[host]
            addresses = queue.pop(0) if isinstance(queue[0], list) else queue
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (a, port) if ":" not in a else (a, port, 0, 0)) for a in addresses]
        return real(host, port, *args, **kwargs)
    monkeypatch.setattr(urls.socket, "getaddrinfo", lookup)
    return calls


def test_host_is_resolved_once_per_hop_and_the_checked_address_is_used(server, monkeypatch):
    calls = fake_dns(monkeypatch, {})
    port = server.rsplit(":", 1)[1]
    image = load_image_url(f"http://localhost:{port}/hop/1", allow_ips=LOOPBACK | {"::1"})
    assert image.size == (20, 10)
    names = [host for host in calls if not host[0].isdigit() and ":" not in host]
    assert names == ["localhost"] * 3                      # one lookup per hop; httpcore only gets the IP
    assert set(calls) - {"localhost"} <= {"127.0.0.1", "::1"}


def test_dns_rebinding_cannot_swap_the_address(server, monkeypatch):
    # The first answer passes the check; any later lookup would say 10.9.9.9. Pinned, no later
    # lookup happens and the request reaches the checked server, still named by its host name.
    port = server.rsplit(":", 1)[1]
    calls = fake_dns(monkeypatch, {"rebind.test": [["127.0.0.1"], ["10.9.9.9"], ["10.9.9.9"]]})
    assert fetch_url(f"http://rebind.test:{port}/host", allow_ips=LOOPBACK) == f"rebind.test:{port}".encode()
    assert calls.count("rebind.test") == 1


def test_a_host_with_any_private_address_is_refused(monkeypatch):
    fake_dns(monkeypatch, {"mixed.test": ["8.8.8.8", "10.0.0.1"], "mixed6.test": ["2606:4700::1", "::1"]})
    for host in ("mixed.test", "mixed6.test"):
        with pytest.raises(InputError, match="not allowed"):
            fetch_url(f"http://{host}/a.png")


def test_the_next_checked_address_is_tried_when_one_does_not_answer(server, monkeypatch):
    port = server.rsplit(":", 1)[1]
    closed = socket.socket()
    closed.bind(("127.0.0.2", 0))                          # a loopback address nobody listens on
    closed.close()
    fake_dns(monkeypatch, {"two.test": ["127.0.0.2", "127.0.0.1"]})
    assert fetch_url(f"http://two.test:{port}/image.png", allow_ips={"127.0.0.1", "127.0.0.2"}) == PNG


def test_an_unreachable_port_says_so(server):
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()
    with pytest.raises(InputError, match="Could not reach host 127.0.0.1"):
        fetch_url(f"http://127.0.0.1:{port}/", allow_ips=LOOPBACK)


def test_https_to_a_plain_http_server_is_refused(server):
    port = server.rsplit(":", 1)[1]
    with pytest.raises(InputError, match="Could not reach host 127.0.0.1|Could not fetch"):
        fetch_url(f"https://127.0.0.1:{port}/image.png", allow_ips=LOOPBACK, timeout=2)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An https server on 127.0.0.1 whose certificate names only `pinned.test`; it records the SNI."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=pinned.test",
                        "-addext", "subjectAltName=DNS:pinned.test"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("the openssl command is needed to make a test certificate")
    names = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_port, str(cert), names
    httpd.shutdown()
    httpd.server_close()


def test_tls_uses_the_host_name_while_connecting_to_the_checked_address(tls_server, monkeypatch):
    port, cert, names = tls_server
    monkeypatch.setattr(certifi, "where", lambda: cert)      # httpcore's trust store: our test CA
    fake_dns(monkeypatch, {"pinned.test": ["127.0.0.1"]})
    assert fetch_url(f"https://pinned.test:{port}/host", allow_ips=LOOPBACK) == f"pinned.test:{port}".encode()
    assert names[-1] == "pinned.test"                       # SNI: the name, not 127.0.0.1
    with pytest.raises(InputError, match="Could not reach host 127.0.0.1 .*certificate is not valid"):
        fetch_url(f"https://127.0.0.1:{port}/host", allow_ips=LOOPBACK)   # the cert is for the name only


def test_an_untrusted_certificate_is_refused(tls_server, monkeypatch):
    port, _, _ = tls_server
    fake_dns(monkeypatch, {"pinned.test": ["127.0.0.1"]})
    with pytest.raises(InputError, match="certificate is not valid"):
        fetch_url(f"https://pinned.test:{port}/host", allow_ips=LOOPBACK)


# --- properties --------------------------------------------------------------------------------

URLISH = st.one_of(
    st.text(max_size=80),
    st.builds(lambda scheme, host, rest: f"{scheme}://{host}{rest}",
              st.sampled_from(["http", "https", "HTTP", "ftp", "file", "", "http:", "javascript"]),
              st.text(max_size=30), st.text(max_size=30)),
)


@settings(max_examples=150, deadline=None)
@given(URLISH)
def test_any_text_as_a_url_gives_only_input_error(url):
    # Every host "resolves" to a private address here, so nothing ever leaves the machine.
    private = lambda host, port, *args, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 80))]
    with mock.patch.object(urls.socket, "getaddrinfo", private):
        with pytest.raises(InputError):
            fetch_url(url, timeout=1)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.sampled_from(["::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808"]),
                 st.integers(0, 2 ** 32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
                 st.integers(0, 2 ** 128 - 1).map(lambda n: str(ipaddress.IPv6Address(n))),
                 st.text(max_size=40)))
def test_check_address_passes_only_global_addresses(address):
    try:
        check_address(address)
    except InputError:
        return
    parsed = ipaddress.ip_address(address)
    parsed = urls._embedded_ipv4(parsed) or parsed          # ::ffff:8.8.8.8 stands for 8.8.8.8
    assert parsed.is_global and not parsed.is_multicast and not parsed.is_loopback


def test_a_slow_dns_lookup_counts_against_the_deadline(monkeypatch):
    # Before: the lookup ran outside the deadline (fetch_url(timeout=10) took 25 s on a 25 s lookup).
    def slow_lookup(host, port, *args, **kwargs):
        time.sleep(5)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
    monkeypatch.setattr(urls.socket, "getaddrinfo", slow_lookup)
    start = time.monotonic()
    with pytest.raises(InputError, match="Timed out looking up host slow.test"):
        fetch_url("http://slow.test/a.png", timeout=0.5, allow_ips=LOOPBACK)
    assert time.monotonic() - start < 4                   # returned before the 5 s lookup ended
