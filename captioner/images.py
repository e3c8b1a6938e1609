"""Images from anyone on the internet, decoded so that nothing they send can hurt the server.

Every refusal is an `InputError` whose message is safe to show in the UI.

Pillow with a decoder allowlist (common web raster formats only), a pixel cap and a memory budget
read from the header before any pixel is decoded, a scan limit for progressive JPEGs (each scan
walks the whole image again), the first frame of animations, EXIF orientation, and every mode
turned into plain RGB (transparency on white, 16-bit and float scaled, not clipped).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

MAX_PIXELS = 40_000_000              # decompression-bomb cap (Pillow's own warns at 89 M, fails at 179 M)
MAX_FILE_BYTES = 40 * 1024 * 1024    # encoded files, bytes and streams (uploads are capped lower by the app)
# Common web raster formats only: every other Pillow decoder (EPS runs Ghostscript, ICO embeds PNGs
# that skip our pixel cap, TGA has no magic number, ...) is attack surface the captioner does not need.
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "PPM")
# Each scan of a progressive JPEG walks the whole image again (up to 45 ms a scan at 36 MP on a slow
# day here), so one small scan repeated thousands of times is a CPU bomb under any pixel cap. Encoders
# write about 10 scans (libjpeg; mozjpeg a few more): 10 scans of a 40 MP photo is 400 M scan-pixels,
# about half a second; a 1 MP image may have 400 scans.
MAX_SCAN_PIXELS = 400_000_000
# Larger images are reduced (box filter) as soon as they are decoded: the encoder sees 224-299 px and
# the page at most 640 px, and every later copy (transparency, orientation, the session's state) stays
# small. Decoding itself is bounded by the pixel cap: at most 4 bytes a pixel, 160 MB at 40 MP, and
# the reduction takes one more copy at most (RGBA is premultiplied first): 330 MB for one image.
MAX_SIDE = 2048
_ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                 4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


class InputError(ValueError):
    """A bad image or URL from the user; the message is safe and clear to show in the UI."""


# --- images ------------------------------------------------------------------------------------

def load_image(source, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A path, bytes, file object, PIL image or numpy array -> a fully loaded RGB PIL image, at most
    MAX_SIDE pixels on its longer side.

    Raises only `InputError`: Pillow's decoders fail in many ways on hostile files (OSError,
    SyntaxError, ValueError, struct.error, EOFError, ...), so anything unexpected is wrapped too.
    """
    try:
        image = _open(source, max_pixels)
        _check_size(image, max_pixels)                # again: a decoded frame may differ from its header
        orientation = image.getexif().get(0x0112) if hasattr(image, "getexif") else None
        image = _shrink(image, MAX_SIDE)
        if orientation in _ORIENTATIONS:
            image = image.transpose(_ORIENTATIONS[orientation])
        return _to_rgb(image)
    except (InputError, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"The image is too large; the limit is {max_pixels / 1e6:g} megapixels") from None
    except Exception as error:
        raise InputError(f"The image could not be decoded ({type(error).__name__})") from error


def _open(source, max_pixels: int) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels)
    return _decode(read_encoded(source), max_pixels)


def read_encoded(source) -> bytes:
    """The encoded bytes of a path, bytes or binary stream, refused past MAX_FILE_BYTES."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, Path)):
        return _read_path(Path(source))
    if hasattr(source, "read"):
        return _read_stream(source)
    raise InputError(f"Cannot read an image from a {type(source).__name__}")


def _read_path(path: Path) -> bytes:
    if not path.is_file():                            # also refuses directories, FIFOs and /dev/zero
        raise InputError(f"No image file at {path.name or path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"The file is larger than {MAX_FILE_BYTES / 2 ** 20:g} MB")
    return path.read_bytes()


def _read_stream(stream) -> bytes:
    data = stream.read(MAX_FILE_BYTES + 1)            # never read an endless stream whole
    if not isinstance(data, (bytes, bytearray)):
        raise InputError("The file was opened as text; an image needs binary data")
    return bytes(data)


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise InputError("The file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"The file is larger than {MAX_FILE_BYTES / 2 ** 20:g} MB")
    # Pillow's bomb check warns above 89 M pixels; we do not turn warnings into errors per call,
    # because warnings.catch_warnings changes process-wide state and Gradio runs us in threads.
    # Our own header check below (40 M by default) refuses those images anyway.
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        _check_size(image, max_pixels)                # from the header, before any pixel is decoded
        if image.format in ("JPEG", "MPO"):
            _check_scans(data, image.size)
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode big JPEGs at 1/2, 1/4 or 1/8 scale
        image.seek(0)                                 # animations: the first frame
        image.load()
    except (InputError, MemoryError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise
    except Image.UnidentifiedImageError:
        raise InputError(f"Not an image, or not a supported format ({', '.join(FORMATS)})") from None
    except Exception as error:                        # OSError, SyntaxError, struct.error, EOFError, ...
        raise InputError(f"The image file is damaged or truncated ({type(error).__name__})") from error
    return image


def _check_size(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise InputError("The image is empty (zero pixels)")
    if width * height > max_pixels:
        raise InputError(f"The image is too large ({width}x{height}); the limit is "
                         f"{max_pixels / 1e6:g} megapixels")


def _check_scans(data: bytes, size: tuple[int, int]) -> None:
    """Refuse a JPEG whose scans would take too long to decode. Inside entropy-coded data a 0xFF byte
    is always followed by 0x00 or a restart marker, so every FF DA is a start-of-scan marker (or lies
    in metadata, which only ever makes the count too high, never too low)."""
    scans, pixels = data.count(b"\xff\xda"), size[0] * size[1]
    if scans * pixels > MAX_SCAN_PIXELS:
        raise InputError(f"The JPEG has {scans} scans of {size[0]}x{size[1]} pixels, too slow to decode "
                         f"(at most {max(MAX_SCAN_PIXELS // pixels, 1)} scans at this size)")


def _shrink(image: Image.Image, max_side: int) -> Image.Image:
    """Reduce an image larger than max_side by a whole factor (a box filter), first turning the
    modes Pillow cannot average (palettes, 1-bit, 16-bit, transparency keys) into ones it can."""
    if max(image.size) <= max_side:
        return image
    if image.mode in ("1", "La"):
        image = image.convert({"1": "L", "La": "LA"}[image.mode])
    elif image.mode == "PA" or "transparency" in image.info:
        image = image.convert("RGBA")
    elif image.mode == "P":
        image = image.convert("RGB")
    elif image.mode.startswith("I;16"):
        image = Image.fromarray(_to_uint8(np.asarray(image)))
    return image.reduce(-(-max(image.size) // max_side))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode -> RGB: transparency on white, 16-bit/32-bit/float scaled to 0..255."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return _to_rgb(Image.fromarray(_to_uint8(np.asarray(image))))   # -> 8-bit "L"
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        # Premultiplied "La" converts only to "LA" in Pillow; every other mode goes to RGBA directly.
        rgba = (image.convert("LA") if image.mode == "La" else image).convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")                       # a new image, never the caller's object


def _from_array(array: np.ndarray, max_pixels: int) -> Image.Image:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of bool/int/float -> a PIL image."""
    if array.dtype.kind not in "biuf" or array.ndim not in (2, 3) or 0 in array.shape:
        raise InputError(f"An image array must be (height, width[, 1|3|4]) numbers, not "
                         f"{array.dtype} {array.shape}")
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise InputError(f"An image array needs 1, 3 or 4 channels, not {array.shape[2]}")
    if array.shape[0] * array.shape[1] > max_pixels:
        raise InputError(f"The image is too large ({array.shape[1]}x{array.shape[0]}); the limit is "
                         f"{max_pixels / 1e6:g} megapixels")
    pixels = _to_uint8(array)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    return _to_rgb(Image.fromarray(np.ascontiguousarray(pixels)))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Numbers -> 0..255, by what their type says about their range:

    bool: False/True -> 0/255. uint8: as is. uint16: the full 16-bit range, /257.
    Other integers (Pillow's 32-bit "I" mode, int16, ...): as is if within 0..255, /257 if within
    0..65535 (16-bit data widened), else stretched min..max.
    Floats: 0..1 if every value is within it (the usual float-image convention), else as is if
    within 0..255, else stretched min..max; NaN and infinities count as 0. A float image in 0..255
    that happens to stay within 0..1 (almost black) is therefore brightened: the price of guessing.
    """
    if values.dtype.kind == "b":
        return values.astype(np.uint8) * 255
    if values.dtype == np.uint8:
        return values
    if values.dtype.kind == "u" and values.dtype.itemsize == 2:
        scaled = np.empty(values.shape, np.uint8)     # round(v / 257) in integers, a block of rows
        for row in range(0, len(values), 256):        # at a time: a 40 MP image needs 40 MB more,
            block = values[row:row + 256].astype(np.uint32)         # not float64's 320 MB twice
            block += 128
            block //= 257
            scaled[row:row + 256] = block
        return scaled
    numbers = values.astype(np.float64)
    numbers[~np.isfinite(numbers)] = 0
    low, high = float(numbers.min()), float(numbers.max())
    if low >= 0 and high <= 1 and values.dtype.kind == "f":
        numbers = numbers * 255
    elif low >= 0 and high <= 255:
        pass
    elif low >= 0 and high <= 65535 and values.dtype.kind in "iu":
        numbers = numbers / 257
    else:
        # Halved first, so that a range as wide as float64's (-1e308..1e308) cannot overflow.
        numbers = (numbers / 2 - low / 2) / max(high / 2 - low / 2, 1e-300) * 255
    return np.clip(np.round(numbers), 0, 255).astype(np.uint8)
