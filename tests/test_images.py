"""Hostile and odd images: each is caption-ready RGB or refused with an InputError, nothing else."""
import io
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageFile

from captioner.images import InputError, load_image

# Pillow warns about the corrupt EXIF blocks that damaged TIFFs carry; the loader refuses or copes.
# numpy's overflow and invalid-cast warnings would mean a scaling bug: make them fail the test.
pytestmark = [pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning"),
              pytest.mark.filterwarnings("error::RuntimeWarning")]
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encoded(image, fmt="PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width=30000, height=30000, idat=None) -> bytes:
    """A small PNG whose header claims a huge 1-bit image (the pixels: one compressed zero run)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * ((width // 8 + 1) * 200)) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def wide_gif_frame(width: int, height: int) -> bytes:
    """A GIF whose screen is 10x10 but whose first frame claims width x height."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return screen + frame + b";"


def ramp(dtype, top, shape=(23, 37)):
    return np.linspace(0, top, shape[0] * shape[1]).reshape(shape).astype(dtype)


# --- modes -------------------------------------------------------------------------------------

def mode_image(mode: str) -> Image.Image:
    if mode in ("I;16", "I", "F"):
        top, dtype = {"I;16": (65535, np.uint16), "I": (70000, np.int32), "F": (1.0, np.float32)}[mode]
        return Image.fromarray(ramp(dtype, top))
    return Image.new("RGB", (37, 23), (200, 40, 10)).convert(mode)


@pytest.mark.parametrize("mode, fmt", [
    ("RGB", "PNG"), ("L", "PNG"), ("1", "PNG"), ("P", "PNG"), ("P", "GIF"), ("CMYK", "JPEG"),
    ("CMYK", "TIFF"), ("LA", "PNG"), ("RGBA", "PNG"), ("RGBA", "WEBP"), ("I;16", "PNG"),
    ("I;16", "TIFF"), ("I", "TIFF"), ("F", "TIFF"), ("YCbCr", "JPEG"), ("L", "PPM"), ("RGB", "BMP"),
])
def test_every_mode_becomes_rgb_of_the_same_size(mode, fmt):
    loaded = load_image(encoded(mode_image(mode), fmt))
    assert loaded.mode == "RGB" and loaded.size == (37, 23)


@pytest.mark.parametrize("mode", ["PA", "La", "RGBa", "RGBX", "HSV", "LAB", "YCbCr", "I;16B", "P", "1"])
def test_in_memory_modes_become_rgb(mode):
    image = Image.new("RGB", (5, 3), (250, 240, 230)).convert(mode) if not mode.startswith("I;16") \
        else Image.new(mode, (5, 3), 65535)
    loaded = load_image(image)
    assert loaded.mode == "RGB" and loaded.size == (5, 3) and np.asarray(loaded).mean() > 200


def test_cmyk_jpeg_keeps_its_colour():
    red = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    r, g, b = np.asarray(load_image(encoded(red, "JPEG", quality=95))).mean(axis=(0, 1))
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_is_scaled_not_clipped(fmt):
    wide = Image.fromarray(np.tile(np.linspace(0, 65535, 64), (4, 1)).astype(np.uint16))
    pixels = np.asarray(load_image(encoded(wide, fmt)))[..., 0]
    assert pixels[0, 0] == 0 and pixels[0, -1] == 255 and 100 < pixels[0, 32] < 160
    dark = Image.fromarray(np.full((4, 4), 255, np.uint16))   # 255 of 65535: nearly black, stays so
    assert np.asarray(load_image(encoded(dark, fmt))).max() <= 1


def test_float_tiff_is_scaled_not_clipped():
    pixels = np.asarray(load_image(encoded(Image.fromarray(ramp(np.float32, 1.0, (4, 64))), "TIFF")))
    assert pixels.min() == 0 and pixels.max() == 255 and len(np.unique(pixels)) > 32


def test_transparency_is_composited_on_white():
    assert np.asarray(load_image(encoded(Image.new("RGBA", (8, 8), (255, 0, 0, 0))))).min() == 255
    assert np.asarray(load_image(encoded(Image.new("LA", (8, 8), (0, 0))))).min() == 255
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0] * 256)
    assert np.asarray(load_image(encoded(palette, transparency=0))).min() == 255
    assert np.asarray(load_image(encoded(palette, "GIF", transparency=0))).min() == 255
    half = np.asarray(load_image(encoded(Image.new("RGBA", (8, 8), (0, 0, 0, 128)))))
    assert (np.abs(half.astype(int) - 127) <= 1).all()


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])                 # PNG: an APNG animation
def test_animations_give_their_first_frame(fmt):
    frames = [Image.new("RGB", (16, 16), c) for c in ((250, 0, 0), (0, 0, 250), (0, 250, 0))]
    data = encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    red, green, blue = np.asarray(load_image(data)).mean(axis=(0, 1))
    assert red > 200 and green < 50 and blue < 50


def marked(size=(40, 20)):
    """Black, with a white 4x4 square at the top left."""
    image = Image.new("RGB", size, (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 4, 4))
    return image


@pytest.mark.parametrize("orientation, size, white_corner", [    # corner as (row, column)
    (1, (40, 20), (0, 0)), (3, (40, 20), (-1, -1)), (6, (20, 40), (0, -1)), (8, (20, 40), (-1, 0)),
])
def test_exif_orientation_is_applied(orientation, size, white_corner):
    image = marked()
    exif = image.getexif()
    exif[0x0112] = orientation                                # 6: rotate 90 degrees clockwise to view
    loaded = np.asarray(load_image(encoded(image, "JPEG", quality=95, exif=exif.tobytes())))
    assert loaded.shape[1::-1] == size
    assert loaded[white_corner].mean() > 200


@pytest.mark.parametrize("size, loaded", [((1, 1), (1, 1)), ((10000, 10), (2000, 2)), ((10, 10000), (2, 2000)),
                                          ((2048, 30), (2048, 30))])
def test_extreme_shapes_are_accepted_and_long_sides_reduced(size, loaded):
    assert load_image(encoded(Image.new("RGB", size, "white"))).size == loaded


# --- bombs, damage and non-images ----------------------------------------------------------------

def test_a_bomb_past_pillows_own_limit_is_refused():
    with pytest.raises(InputError, match="too large"):
        load_image(bomb_png(30000, 30000))


def test_a_bomb_is_refused_from_its_header_before_decoding():
    # 8000x8000 = 64 M pixels: under Pillow's limits, over ours. The pixel data is garbage, so
    # "too large" (not "damaged") shows the header was checked before any decoding.
    with pytest.raises(InputError, match=r"too large \(8000x8000\).*40 megapixels"):
        load_image(bomb_png(8000, 8000, idat=b"garbage"))
    with pytest.raises(InputError, match="too large"):
        load_image(wide_gif_frame(9000, 9000))                # the frame, not the screen, counts


@pytest.mark.parametrize("as_error", [False, True])
def test_pillows_bomb_warning_zone_is_refused_whatever_the_warning_filters(as_error):
    # 10000x10000 = 100 M pixels: Pillow only warns (89..179 M); the app may or may not make
    # warnings errors. Either way the caller gets an InputError.
    with warnings.catch_warnings():
        warnings.simplefilter("error" if as_error else "ignore")
        with pytest.raises(InputError, match="too large"):
            load_image(bomb_png(10000, 10000))


def scan_bomb(side: int, scans: int) -> bytes:
    """A valid progressive JPEG whose last scan is repeated: each copy walks the whole image again."""
    data = encoded(Image.new("L", (side, side), 128), "JPEG", progressive=True, quality=50)
    last_scan, end = data.rfind(b"\xff\xda"), data.rfind(b"\xff\xd9")
    return data[:end] + data[last_scan:end] * scans + b"\xff\xd9"


def test_a_progressive_jpeg_scan_bomb_is_refused_before_decoding(monkeypatch):
    # Before: 500 repeated scans of a 6000x6000 JPEG (171 KB) took 17 s of CPU to decode here.
    bomb = scan_bomb(6000, 500)
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoding started"))
    with pytest.raises(InputError, match=r"506 scans of 6000x6000 pixels, too slow to decode \(at most 11 "):
        load_image(bomb)


def test_progressive_jpegs_as_encoders_write_them_load():
    for side in (6000, 300):        # 40 M scan-pixels allow 11 scans at 36 MP, 4444 at 300x300
        image = load_image(encoded(Image.new("RGB", (side, side), (200, 30, 30)), "JPEG", progressive=True))
        assert max(image.size) <= 2048 and image.getpixel((5, 5))[0] > 150
    assert load_image(scan_bomb(300, 500)).size == (300, 300)


def big_image_files(folder) -> dict:
    """Just under the 40 MP cap, each a small file: float TIFF, 16-bit grey PNG, RGBA PNG, palette GIF."""
    side = 6300
    values = np.full((side, side), 0.25, np.float32)
    values[:side // 2, :side // 3] = 0.75                            # something to scale, still compressible
    files = {"float.tif": Image.fromarray(values, "F"),
             "grey16.png": Image.fromarray((values * 65535).astype(np.uint16)),
             "rgba.png": Image.new("RGBA", (side, side), (10, 200, 30, 128)),
             "palette.gif": Image.new("P", (side, side), 3)}
    for name, image in files.items():
        image.save(folder / name, **({"compression": "tiff_adobe_deflate"} if name.endswith("tif") else {}))
    return {name: folder / name for name in files}


MEASURE = """
import re, sys, time
from captioner.images import load_image
def peak_mb():   # VmHWM: this process's own peak (ru_maxrss would carry the parent's over exec)
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
before, start = peak_mb(), time.process_time()
image = load_image(sys.argv[1])
print(image.size[0], image.size[1], round(peak_mb() - before), round(time.process_time() - start, 2))
"""


def test_the_largest_images_load_within_a_memory_budget(tmp_path):
    # Before: just under 40 MP, a float TIFF took 1.4 GB to load, a 16-bit PNG 0.9 GB, RGBA 1.0 GB.
    # Now the decoded frame (at most 4 bytes a pixel, 160 MB) is reduced to <= 2048 px at once.
    for name, path in big_image_files(tmp_path).items():
        out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parent.parent)
        width, height, grown_mb, cpu_s = out.stdout.split()
        print(f"{name}: loaded as {width}x{height}, peak memory +{grown_mb} MB, {cpu_s} s CPU")
        assert (int(width), int(height)) == (1575, 1575)
        assert float(grown_mb) < 340           # the frame (160 MB) and one working copy


def test_the_pixel_cap_is_an_argument():
    image = Image.new("RGB", (100, 100))
    assert load_image(encoded(image), max_pixels=10_000).size == (100, 100)
    for source in (encoded(image), image, np.zeros((100, 100, 3), np.uint8)):
        with pytest.raises(InputError, match="too large"):
            load_image(source, max_pixels=9_999)


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"hello, I am text pretending to be a jpeg", "Not an image"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', "Not an image"),
    (b"<html><body><img src=x></body></html>", "Not an image"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj", "Not an image"),
    (b"PK\x03\x04" + b"\0" * 40, "Not an image"),
    (b"\x89PNG\r\n\x1a\n", "damaged|Not an image"),
    (b"\xff\xd8\xff", "damaged|Not an image"),
])
def test_bad_bytes_are_refused_clearly(data, message):
    with pytest.raises(InputError, match=message):
        load_image(data)


@pytest.mark.parametrize("fmt", ["ICO", "TGA", "PCX", "EPS", "XBM", "IM", "SGI"])
def test_formats_outside_the_allowlist_are_refused(fmt):
    # EPS would run Ghostscript; ICO can embed a PNG that skips the pixel cap; none are needed.
    image = Image.new("1" if fmt == "XBM" else "RGB", (16, 16), 1 if fmt == "XBM" else (9, 9, 9))
    with pytest.raises(InputError, match="not a supported format"):
        load_image(encoded(image, fmt))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_refused(fmt):
    data = encoded(Image.effect_noise((64, 64), 50).convert("RGB"), fmt)
    for cut in (len(data) // 2, len(data) - 30, 40):
        with pytest.raises(InputError, match="damaged|Not an image"):
            load_image(data[:cut])


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "BMP", "TIFF", "PPM"])
def test_truncated_files_of_other_formats_load_or_are_refused(fmt):
    data = encoded(Image.effect_noise((64, 64), 50).convert("RGB"), fmt)
    for cut in (len(data) // 2, 20, 8):
        try:
            assert load_image(data[:cut]).mode == "RGB"
        except InputError as error:
            assert str(error)


def test_a_corrupt_png_is_refused():
    data = bytearray(encoded(Image.effect_noise((64, 64), 50).convert("RGB")))
    data[len(data) // 2] ^= 0xFF                              # breaks the IDAT's CRC and data
    with pytest.raises(InputError, match="damaged"):
        load_image(bytes(data))


# --- kinds of source ---------------------------------------------------------------------------

def test_paths_file_objects_and_buffers(tmp_path):
    data = encoded(Image.new("RGB", (5, 4), "red"))
    (tmp_path / "a.png").write_bytes(data)
    for source in (tmp_path / "a.png", str(tmp_path / "a.png"), io.BytesIO(data), bytearray(data),
                   memoryview(data)):
        assert load_image(source).size == (5, 4)


def test_bad_paths_and_objects(tmp_path):
    with pytest.raises(InputError, match="No image file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(InputError, match="No image file"):
        load_image(tmp_path)                                  # a directory
    with pytest.raises(InputError):
        load_image("bad\0path.png")
    named = tmp_path / "photo.jpg"
    named.write_text("not a picture")
    with pytest.raises(InputError, match="Not an image"):
        load_image(named)
    with named.open() as text_file:
        with pytest.raises(InputError, match="text"):
            load_image(text_file)
    for thing in (12345, None, [1, 2, 3], object()):
        with pytest.raises(InputError):
            load_image(thing)


def test_a_pil_image_is_converted_into_a_new_loaded_image(tmp_path):
    original = Image.new("RGB", (6, 6), "blue")
    loaded = load_image(original)
    assert loaded is not original and loaded.mode == "RGB"
    (tmp_path / "lazy.png").write_bytes(encoded(Image.new("RGBA", (6, 3), (0, 0, 0, 0))))
    with Image.open(tmp_path / "lazy.png") as lazy:           # not yet decoded
        assert np.asarray(load_image(lazy)).min() == 255


def test_a_broken_pil_image_raises_input_error():
    lazy = Image.open(io.BytesIO(encoded(Image.new("RGB", (64, 64)))[:60]))
    with pytest.raises(InputError):
        load_image(lazy)


# --- numpy arrays ------------------------------------------------------------------------------

@pytest.mark.parametrize("array, expected", [
    (np.array([[False, True]]), [0, 255]),
    (np.array([[0, 128, 255]], np.uint8), [0, 128, 255]),
    (np.array([[0, 32896, 65535]], np.uint16), [0, 128, 255]),   # 16-bit: /257
    (np.array([[0.0, 0.5, 1.0]], np.float32), [0, 128, 255]),     # floats within 0..1: x255
    (np.array([[0.0, 0.5, 1.0]], np.float16), [0, 128, 255]),
    (np.array([[0.0, 128.0, 255.0]]), [0, 128, 255]),             # floats within 0..255: as is
    (np.array([[-1.0, 0.0, 1.0]]), [0, 128, 255]),                # other ranges: stretched
    (np.array([[-1.7e308, 0.0, 1.7e308]]), [0, 128, 255]),        # ... without overflowing
    (np.array([[np.nan, np.inf, 1.0]]), [0, 0, 255]),             # NaN and infinities count as 0
    (np.array([[0, 128, 255]], np.int64), [0, 128, 255]),         # integers within 0..255: as is
    (np.array([[0, 32896, 65535]], np.int32), [0, 128, 255]),     # within 0..65535: /257
    (np.array([[-5, 0, 5]], np.int8), [0, 128, 255]),
    (np.array([[0, 2 ** 31, 2 ** 32 - 1]], np.uint32), [0, 128, 255]),
])
def test_arrays_are_scaled_by_their_type(array, expected):
    loaded = np.asarray(load_image(array))
    assert loaded.shape == (1, len(expected), 3)
    assert loaded[0, :, 0].tolist() == expected and (loaded[..., 0] == loaded[..., 2]).all()


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 1), (4, 5, 3), (4, 5, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, bool, np.int32])
def test_arrays_of_each_shape_and_dtype(shape, dtype):
    loaded = load_image(np.ones(shape, dtype))
    assert loaded.mode == "RGB" and loaded.size == (5, 4)


def test_rgba_arrays_are_composited_on_white():
    assert np.asarray(load_image(np.zeros((3, 3, 4), np.uint8))).min() == 255


def test_a_non_contiguous_array_is_fine():
    array = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)[:, ::2]
    assert np.array_equal(np.asarray(load_image(array)), array)


@pytest.mark.parametrize("array", [
    np.zeros((4, 4, 2)), np.zeros((4, 4, 5)), np.zeros((0, 4, 3)), np.zeros((4, 0)), np.zeros(4),
    np.zeros((2, 2, 2, 3)), np.array(3.0), np.array([["a"]]), np.zeros((2, 2), complex),
    np.array([[None]], object), np.zeros((2, 2), "datetime64[s]"),
])
def test_bad_arrays_are_refused(array):
    with pytest.raises(InputError, match="array"):
        load_image(array)


# --- properties --------------------------------------------------------------------------------

def expect_rgb_or_input_error(source, size=None):
    try:
        loaded = load_image(source)
    except InputError as error:
        assert str(error)
        return
    assert loaded.mode == "RGB"
    if size is not None:
        assert loaded.size == size


@settings(FAST, max_examples=100)
@given(st.binary(max_size=2048))
def test_random_bytes_never_raise_anything_but_input_error(data):
    expect_rgb_or_input_error(data)


@settings(FAST, max_examples=100)
@given(prefix=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\0\0\0\0WEBPVP8 ",
                               b"BM", b"II*\0", b"MM\0*", b"P6\n"]), rest=st.binary(max_size=512))
def test_random_bytes_behind_real_magic_numbers(prefix, rest):
    expect_rgb_or_input_error(prefix + rest)


SEEDS = {fmt: encoded(Image.effect_noise((24, 16), 60).convert("RGB"), fmt)
         for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")}


@settings(FAST, max_examples=100)
@given(fmt=st.sampled_from(sorted(SEEDS)), edits=st.lists(
    st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8))
def test_valid_images_with_random_bytes_changed(fmt, edits):
    data = bytearray(SEEDS[fmt])
    for where, value in edits:
        data[int(where * len(data))] = value
    expect_rgb_or_input_error(bytes(data))


MODES = ["RGB", "RGBA", "L", "LA", "P", "PA", "1", "CMYK", "YCbCr", "I;16", "I", "F"]


@settings(FAST, max_examples=80)
@given(mode=st.sampled_from(MODES), width=st.integers(1, 48), height=st.integers(1, 48),
       fmt=st.sampled_from(["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "PPM"]), seed=st.integers(0, 2 ** 16))
def test_random_valid_images_load_as_rgb_or_are_refused(mode, width, height, fmt, seed):
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(noise).convert(mode) if mode not in ("I;16", "I", "F") else \
        Image.fromarray(noise[..., 0]).convert("I" if mode != "F" else "F")
    if mode == "I;16":
        image = Image.fromarray(noise[..., 0].astype(np.uint16) * 257)
    if image.mode == "I" and fmt == "PNG":
        fmt = "TIFF"                             # Pillow is retiring 32-bit PNG output
    try:
        data = encoded(image, fmt)
    except (OSError, ValueError, KeyError):
        return                                   # this format cannot store this mode: nothing to test
    expect_rgb_or_input_error(data, (width, height))


@settings(FAST, max_examples=60)
@given(hnp.arrays(dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.int64, np.float16, np.float32,
                                         np.float64, bool]),
                  shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)))
def test_random_arrays_load_as_rgb_or_are_refused(array):
    good = array.ndim in (2, 3) and 0 not in array.shape and (array.ndim == 2 or array.shape[2] in (1, 3, 4))
    try:
        loaded = load_image(array)
    except InputError:
        assert not good
        return
    assert good and loaded.mode == "RGB" and loaded.size == (array.shape[1], array.shape[0])
