"""URLs from anyone on the internet, fetched so that they cannot reach inside the server's network.

Gradio's `safehttpx` has the right idea (resolve once, refuse non-public addresses, connect to
the checked address, keep the host name for TLS) but is async, returns the first public address of a
host that also has private ones, asks Google's DNS as a fallback, treats carrier-grade NAT and 6to4
as public, has no size cap and no overall deadline (docs/security.md, the last section). So the same
idea is built here on httpcore (httpx's own connection layer, public API): a small network backend
that can only connect to the checked addresses and caps every socket operation by one deadline.
Every refusal is an `InputError` whose message is safe to show.
"""
from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as LookupTimeout
import ssl
import time
from collections.abc import Collection

import httpcore
import httpx
from PIL import Image

from ..images import MAX_PIXELS, InputError
from ..sandbox import load_untrusted_image

MAX_URL_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 3
# Addresses that `ipaddress.is_global` calls public (in some Python patch releases) but that only
# lead into a cloud host or an IETF special range: Azure's WireServer, and 192.0.0.0/24 (IETF
# protocol assignments, with Oracle Cloud's metadata at 192.0.0.192), which Python 3.11.7 calls
# global. The other metadata services (169.254.169.254, fd00:ec2::254, 100.100.100.200) are already
# link-local, unique-local or carrier-grade NAT.
NOT_PUBLIC = (ipaddress.ip_network("168.63.129.16/32"), ipaddress.ip_network("192.0.0.0/24"))
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64); ipaddress calls them global.
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = b"captioner-image-fetch/1.0"
# getaddrinfo has no timeout of its own, so lookups run here and are waited for only until the
# fetch's deadline; a few slow lookups can hold these threads, never more threads than this.
_LOOKUPS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="captioner-dns")


# --- addresses ---------------------------------------------------------------------------------

def check_address(ip: str) -> None:
    """Refuse any address that is not plainly public, including IPv4 hidden inside IPv6 forms."""
    try:
        address = ipaddress.ip_address(str(ip).split("%")[0])     # drop an IPv6 zone ("%eth0")
    except ValueError:
        raise InputError("That address is not allowed (not an IP address)") from None
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return check_address(str(embedded))
    if (not address.is_global or address.is_multicast or address.is_reserved
            or address.is_unspecified or address.is_link_local or address.is_loopback
            or getattr(address, "is_site_local", False)
            or any(address in network for network in NOT_PUBLIC)):
        raise InputError("That address is not allowed (private or local network)")


def _embedded_ipv4(address):
    """The IPv4 address an IPv6 address stands for: mapped, 6to4, Teredo or NAT64; else None."""
    if address.version != 6:
        return None
    for embedded in (address.ipv4_mapped, address.sixtofour):
        if embedded is not None:
            return embedded
    if address.teredo:
        return address.teredo[1]                      # the client; the Teredo range is refused anyway
    if any(address in network for network in NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


# --- URLs --------------------------------------------------------------------------------------

def fetch_url(url: str, *, max_bytes: int = MAX_URL_BYTES, timeout: float = 10.0,
              connect_timeout: float = 5.0, max_redirects: int = MAX_REDIRECTS,
              allow_private: bool = False, allow_ips: Collection[str] = ()) -> bytes:
    """GET a public http(s) URL -> its body, at most `max_bytes`, within `timeout` seconds in all.

    Redirects are followed by hand, each hop parsed, resolved and checked like the first URL.
    `allow_private=True` turns the address check off and `allow_ips` lets exactly those addresses
    through (e.g. a test's loopback server, while a redirect to 10.0.0.1 is still refused); both
    are for tests only: the app never sets them.
    """
    deadline = time.monotonic() + timeout
    allowed = frozenset(ipaddress.ip_address(ip) for ip in allow_ips)
    for _ in range(max_redirects + 1):
        target = _parse_url(url)
        addresses = _resolve(target, allow_private, allowed, deadline)
        next_url, body = _get(target, addresses, deadline, connect_timeout, max_bytes)
        if next_url is None:
            return body
        url = next_url
    raise InputError(f"Too many redirects (more than {max_redirects})")


def load_image_url(url: str, *, max_pixels: int = MAX_PIXELS, **fetch_options) -> Image.Image:
    """fetch_url, then decode in a budgeted worker (captioner.sandbox): whatever the server says the
    content type is, only bytes Pillow opens as an allowed image format are accepted."""
    return load_untrusted_image(fetch_url(url, **fetch_options), max_pixels=max_pixels)


def _parse_url(url) -> httpx.URL:
    """One parser for everything (httpx's, RFC 3986 with IDNA): the host we check is the host we
    ask for, and no second parser can read the URL differently."""
    try:
        target = httpx.URL(str(url).strip())
    except (httpx.InvalidURL, ValueError, TypeError):
        raise InputError("That is not a valid URL") from None
    if target.scheme not in ("http", "https"):
        raise InputError("Only http and https URLs are allowed")
    if target.userinfo:
        raise InputError("URLs with a user name or password are not allowed")
    if not target.raw_host:
        raise InputError("That URL has no host name")
    if target.port is not None and not 0 < target.port < 65536:
        raise InputError("That is not a valid URL (bad port)")
    return target


def _host(target: httpx.URL) -> str:
    return target.raw_host.decode("ascii")            # IDNA-encoded, percent-escaped: safe to show


def _resolve(target: httpx.URL, allow_private: bool, allowed: frozenset, deadline: float) -> list[str]:
    """One DNS lookup per hop, within the fetch's deadline. Refuse the host if ANY address is not
    public: the order of the answers is the attacker's to choose, and a retry could use another one."""
    host = _host(target)
    port = target.port or (443 if target.scheme == "https" else 80)
    lookup = _LOOKUPS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=max(deadline - time.monotonic(), 0.0))
    except LookupTimeout:
        lookup.cancel()
        raise InputError(f"Timed out looking up host {host[:100]}") from None
    except (OSError, UnicodeError, ValueError):
        raise InputError(f"Could not reach host {host[:100]} (the name does not resolve)") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos
                                   if info[0] in (socket.AF_INET, socket.AF_INET6)))
    if not addresses:
        raise InputError(f"Could not reach host {host[:100]} (no IP address)")
    for address in addresses:
        if not allow_private and ipaddress.ip_address(address.split("%")[0]) not in allowed:
            check_address(address)
    return addresses


def _get(target: httpx.URL, addresses: list[str], deadline: float, connect_timeout: float,
         max_bytes: int) -> tuple[httpx.URL | None, bytes]:
    """One request -> (the redirect's next URL, b"") or (None, the body)."""
    request_url = httpcore.URL(scheme=target.raw_scheme, host=target.raw_host, port=target.port,
                               target=target.raw_path)
    headers = [(b"Host", target.netloc), (b"Accept", b"image/*"), (b"User-Agent", USER_AGENT),
               (b"Accept-Encoding", b"identity")]     # nothing for us to decompress: no zip bombs
    # httpcore reads no proxy settings from the environment (a proxy would defeat the pinning),
    # does not follow redirects, and verifies TLS against certifi's roots for the URL's host name.
    backend = _PinnedBackend(_host(target), addresses, deadline)
    try:
        left = _seconds_left(deadline, httpcore.ConnectTimeout)
        timeouts = {"connect": min(connect_timeout, left), "read": left, "write": left, "pool": left}
        with httpcore.ConnectionPool(network_backend=backend, retries=0) as pool, \
                pool.stream("GET", request_url, headers=headers, extensions={"timeout": timeouts}) as reply:
            reply_headers = httpx.Headers(reply.headers)
            if reply.status in REDIRECT_CODES and "location" in reply_headers:
                return target.join(reply_headers["location"]), b""
            if reply.status != 200:
                raise InputError(f"HTTP error {reply.status} fetching the URL")
            return None, _read_capped(reply.iter_stream(), reply_headers, max_bytes)
    except httpcore.TimeoutException:
        raise InputError("Timed out fetching the URL") from None
    except httpcore.ConnectError as error:
        why = " (its TLS certificate is not valid)" if _caused_by(error, ssl.SSLCertVerificationError) else ""
        raise InputError(f"Could not reach host {_host(target)[:100]}{why}") from None
    except (httpcore.NetworkError, httpcore.ProtocolError, httpx.InvalidURL, OSError):
        raise InputError("Could not fetch the URL (the connection broke or the reply was malformed)") \
            from None


def _caused_by(error: BaseException, kind: type) -> bool:
    """Whether `kind` is in the exception's chain (httpcore re-raises socket and TLS errors)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _read_capped(chunks, headers: httpx.Headers, max_bytes: int) -> bytes:
    too_big = InputError(f"The image is larger than {max_bytes / 2 ** 20:g} MB")
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:          # refuse before reading a byte
        raise too_big
    body = bytearray()
    for chunk in chunks:                                          # chunked or unsized bodies too
        body += chunk
        if len(body) > max_bytes:
            raise too_big
    return bytes(body)


def _seconds_left(deadline: float, timeout_error) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise timeout_error("deadline passed")
    return left


def _within(deadline: float, timeout: float | None, timeout_error) -> float:
    """A socket operation's timeout, cut so that it ends by the deadline (httpcore's timeouts are
    per operation: a server sending one byte a second would otherwise never time out)."""
    left = _seconds_left(deadline, timeout_error)
    return left if timeout is None else min(timeout, left)


class _PinnedBackend(httpcore.NetworkBackend):
    """httpcore's own socket backend, with two changes: it connects only to the addresses that
    were checked (tried in order, like socket.create_connection; the URL's host name stays in the
    request for the Host header, TLS SNI and certificate checks, and no second DNS lookup can swap
    the address), and every socket operation ends by the deadline."""

    def __init__(self, host: str, addresses: list[str], deadline: float):
        self._host, self._addresses, self._deadline = host, addresses, deadline
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if host != self._host:                        # this backend serves one checked host only
            raise httpcore.ConnectError(f"not the checked host: {host}")
        error = httpcore.ConnectError("no address")
        for address in self._addresses:
            try:
                stream = self._backend.connect_tcp(
                    address, port, _within(self._deadline, timeout, httpcore.ConnectTimeout),
                    local_address, socket_options)
                return _DeadlineStream(stream, self._deadline)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failure:
                error = failure
        raise error

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("Unix sockets are never used")

    def sleep(self, seconds):
        time.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """A connected stream whose reads and writes all end by the deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float):
        self._stream, self._deadline = stream, deadline

    def read(self, max_bytes, timeout=None):
        return self._stream.read(max_bytes, _within(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer, timeout=None):
        self._stream.write(buffer, _within(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self):
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        timeout = _within(self._deadline, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout), self._deadline)

    def get_extra_info(self, info):
        return self._stream.get_extra_info(info)
