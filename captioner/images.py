"""Images and URLs from anyone on the internet, loaded so that nothing they send can hurt the server.

Every failure is an `InputError` whose message is safe to show in the UI. URLs are fetched with
httpx over a transport pinned to the address that was checked (the technique of Gradio's
`safehttpx`, made synchronous), with a stricter address check than safehttpx's (carrier-grade NAT,
6to4/NAT64/Teredo wrappers, and every resolved address must be public, not just one), a size cap
while streaming, a deadline over the whole download, and each redirect checked like the first URL.
"""
from __future__ import annotations

import io
import ipaddress
import socket
import time
import warnings
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS = 40_000_000              # decompression-bomb cap (Pillow's own is 89 M with a warning)
MAX_URL_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 3
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "PPM", "ICO", "TGA")   # raster only
# Ranges `ip.is_global` lets through that still lead somewhere private, or wrap another address.
WRAPPERS = {ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48")}


class InputError(ValueError):
    """A bad image or URL from the user; the message is safe and clear to show in the UI."""


# --- images ------------------------------------------------------------------------------------

def load_image(source, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A path, bytes, file object, PIL image or numpy array -> a loaded RGB PIL image."""
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = _from_array(source)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        image = _decode(bytes(source), max_pixels)
    elif isinstance(source, (str, Path)):
        image = _decode(_read_file(Path(source)), max_pixels)
    elif hasattr(source, "read"):
        image = _decode(source.read(), max_pixels)
    else:
        raise InputError(f"Cannot read an image from a {type(source).__name__}")
    _check_size(image, max_pixels)
    try:
        return _to_rgb(ImageOps.exif_transpose(image))
    except InputError:
        raise
    except Exception as error:   # Pillow's decoders fail in many ways on hostile files
        raise InputError(f"The image could not be decoded ({type(error).__name__})") from None


def _read_file(path: Path) -> bytes:
    if not path.is_file():
        raise InputError(f"No image file at {path.name or path}")
    if path.stat().st_size > 4 * MAX_URL_BYTES:
        raise InputError(f"The file is larger than {4 * MAX_URL_BYTES // 2 ** 20} MB")
    return path.read_bytes()


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise InputError("The file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            _check_size(image, max_pixels)        # from the header, before any pixel is decoded
            image.seek(0)                         # animations: the first frame
            image.load()
    except InputError:
        raise
    except Image.UnidentifiedImageError:
        raise InputError(f"Not an image, or not a supported format ({', '.join(FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"The image is too large; the limit is {max_pixels / 1e6:.0f} megapixels") from None
    except Exception as error:   # truncated/corrupt files raise OSError, SyntaxError, ValueError, ...
        raise InputError(f"The image file is damaged or truncated ({type(error).__name__})") from None
    return image


def _check_size(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise InputError("The image is empty (zero pixels)")
    if width * height > max_pixels:
        raise InputError(f"The image is too large ({width}x{height}); the limit is "
                         f"{max_pixels / 1e6:.0f} megapixels")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode -> RGB: transparency on white, 16-bit/32-bit/float scaled to 0..255."""
    if image.mode == "RGB":
        return image.copy() if image.readonly else image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _from_array(np.asarray(image))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _scaled_to_bytes(values: np.ndarray) -> np.ndarray:
    """Numbers of any range -> uint8: 0..1 floats, 8-bit, 16-bit, else min..max."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min(initial=0)), float(values.max(initial=0))
    if low >= 0 and high <= 1.0 and values.dtype.kind == "f":
        values = values * 255
    elif low >= 0 and high > 255:
        values = values / 257 if high <= 65535 else (values - low) / max(high - low, 1e-12) * 255
    elif low < 0:
        values = (values - low) / max(high - low, 1e-12) * 255
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype.kind not in "biuf" or array.ndim not in (2, 3) or 0 in array.shape:
        raise InputError(f"An image array must be (height, width[, 1|3|4]) numbers, not {array.dtype} "
                         f"{array.shape}")
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise InputError(f"An image array needs 1, 3 or 4 channels, not {array.shape[2]}")
    pixels = array.astype(np.uint8) * 255 if array.dtype.kind == "b" else \
        array if array.dtype == np.uint8 else _scaled_to_bytes(array)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    image = Image.fromarray(np.ascontiguousarray(pixels))
    return _to_rgb(image) if image.mode != "L" else image.convert("RGB")


# --- URLs --------------------------------------------------------------------------------------

def check_address(ip: str) -> None:
    """Refuse any address that is not plainly public, including ones wrapped in IPv6 forms."""
    try:
        address = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        raise InputError("That address is not allowed") from None
    if address.version == 6:
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and any(address in net for net in WRAPPERS):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return check_address(str(embedded))
    if (not address.is_global or address.is_multicast or address.is_reserved
            or address.is_unspecified or address.is_link_local or address.is_loopback):
        raise InputError("That address is not allowed (private, local or reserved network)")


def _check_url(url: str):
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise InputError("That is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise InputError("Only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise InputError("URLs with a user name or password are not allowed")
    if not parts.hostname:
        raise InputError("That URL has no host name")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _resolve(host: str, port: int, allowed: frozenset) -> str:
    """Resolve once; every address must pass (a host with one private address is refused)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise InputError(f"Could not resolve the host {host[:100]}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        if address not in allowed:
            check_address(address)
    return addresses[0]


def fetch_url(url: str, *, max_bytes: int = MAX_URL_BYTES, timeout: float = 10.0,
              connect_timeout: float = 5.0, max_redirects: int = MAX_REDIRECTS,
              allowed_addresses=()) -> bytes:
    """GET an image URL safely -> its bytes. `allowed_addresses` is for tests' loopback servers only."""
    deadline = time.monotonic() + timeout
    allowed = frozenset(allowed_addresses)
    for _ in range(max_redirects + 1):
        host, port = _check_url(url)
        address = _resolve(host, port, allowed)
        left = max(deadline - time.monotonic(), 0.05)   # one deadline over every hop and every read
        try:
            with httpx.Client(transport=PinnedTransport(address), trust_env=False, follow_redirects=False,
                              timeout=httpx.Timeout(left, connect=min(connect_timeout, left))) as client:
                with client.stream("GET", url, headers={"Accept": "image/*", "User-Agent": "captioner"}) as reply:
                    if reply.is_redirect and "location" in reply.headers:
                        url = urljoin(url, reply.headers["location"])
                        continue
                    if reply.status_code != 200:
                        raise InputError(f"HTTP error {reply.status_code} fetching the URL")
                    return _read_capped(reply, max_bytes, deadline)
        except httpx.TimeoutException:
            raise InputError("Timed out fetching the URL") from None
        except httpx.HTTPError as error:
            raise InputError(f"Could not fetch the URL ({type(error).__name__})") from None
    raise InputError(f"Too many redirects (more than {max_redirects})")


def _read_capped(reply, max_bytes: int, deadline: float) -> bytes:
    too_big = InputError(f"The image is larger than {max_bytes / 2 ** 20:g} MB")
    declared = reply.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    body = bytearray()
    for chunk in reply.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise too_big
        if time.monotonic() > deadline:
            raise InputError("Timed out fetching the URL")
    return bytes(body)


def load_image_url(url: str, *, max_pixels: int = MAX_PIXELS, **fetch_options) -> Image.Image:
    return load_image(fetch_url(url, **fetch_options), max_pixels=max_pixels)


class PinnedTransport(httpx.HTTPTransport):
    """Connect to the checked address; keep the host name for Host, TLS SNI and certificates."""

    def __init__(self, address: str):
        super().__init__(retries=0)
        self.address = address

    def handle_request(self, request):
        host = request.url.host
        request.url = request.url.copy_with(host=self.address)
        request.headers["Host"] = host if request.url.port is None else f"{host}:{request.url.port}"
        request.extensions = {**request.extensions, "sni_hostname": host}
        return super().handle_request(request)
