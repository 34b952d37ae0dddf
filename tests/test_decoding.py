"""Encoded image bytes: every accepted format's header is read and checked
against max_pixels before decoding; other formats are refused by name."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from overfeat_tf.data.decoding import (
    FORMATS,
    MAX_PIXELS,
    declared_pixels,
    decode,
    header_size,
)

TOO_MANY = f"more than {MAX_PIXELS} pixels"


def _encoded(image, fmt, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little", signed=value < 0)


# Hand-made headers (a few dozen bytes) declaring huge images.


def gif(screen=(1, 1), frames=((1, 1),)) -> bytes:
    """GIF89a with a logical screen and one image descriptor per frame
    (height, width), each with an empty image (code size 2, no sub-blocks)."""
    height, width = screen
    data = b"GIF89a" + _le(width, 2) + _le(height, 2) + b"\x00\x00\x00"
    for height, width in frames:
        data += b",\0\0\0\0" + _le(width, 2) + _le(height, 2) + b"\x00\x02\x00"
    return data + b";"


def bmp(height: int, width: int) -> bytes:
    """BITMAPFILEHEADER + BITMAPINFOHEADER, 24 bits, no pixels."""
    info = _le(40, 4) + _le(width, 4) + _le(height, 4) + _le(1, 2) + _le(24, 2)
    return b"BM" + _le(54, 4) + _le(0, 4) + _le(54, 4) + info + bytes(24)


def riff(chunk: bytes, payload: bytes) -> bytes:
    body = b"WEBP" + chunk + _le(len(payload), 4) + payload
    return b"RIFF" + _le(len(body), 4) + body


def webp_vp8(height: int, width: int) -> bytes:
    return riff(b"VP8 ", b"\x10\x02\x00\x9d\x01\x2a" + _le(width, 2) + _le(height, 2))


def webp_vp8l(height: int, width: int) -> bytes:
    return riff(b"VP8L", b"\x2f" + _le((width - 1) | (height - 1) << 14, 4))


def webp_vp8x(height: int, width: int) -> bytes:
    return riff(b"VP8X", bytes(4) + _le(width - 1, 3) + _le(height - 1, 3))


HUGE = {
    "gif screen 12000 x 12000": gif(screen=(12000, 12000)),
    "gif frame 20000 x 20000 on a 1 x 1 screen": gif(frames=[(20000, 20000)]),
    # TensorFlow's output spans the widest and the tallest frame.
    "gif frames 1 x 60000 and 60000 x 1": gif(frames=[(1, 60000), (60000, 1)]),
    "gif of 2000 frames of 200 x 200": gif(frames=[(200, 200)] * 2000),
    "bmp 12000 x 12000": bmp(12000, 12000),
    "bmp 12000 x 12000 top-down": bmp(-12000, 12000),
    "webp lossy 16383 x 16383": webp_vp8(16383, 16383),
    "webp lossless 16384 x 16384": webp_vp8l(16384, 16384),
    "webp extended 100000 x 100000": webp_vp8x(100000, 100000),
}


@pytest.mark.parametrize("name", HUGE)
def test_huge_headers_are_refused_before_decoding(name):
    """Eagerly and in a graph: the header's message, not the decoder's."""
    data = HUGE[name]
    assert len(data) < 30000  # all of it headers
    graph = tf.function(decode, input_signature=[tf.TensorSpec([], tf.string)])
    for run in (decode, graph):
        with pytest.raises(tf.errors.InvalidArgumentError, match=TOO_MANY):
            run(tf.constant(data))


def test_a_gif_too_long_to_walk_is_refused():
    """Sub-blocks of one byte each: the walk over the blocks is bounded."""
    data = gif()[:-2] + b"\x01\x00" * 20000 + b"\x00;"
    with pytest.raises(tf.errors.InvalidArgumentError, match=TOO_MANY):
        decode(tf.constant(data))


@pytest.mark.parametrize(
    "data",
    [
        _encoded(np.zeros((4, 5, 3), np.uint8), "TIFF"),
        b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(20),  # JPEG XL
        riff(b"ALPH", bytes(16)),  # a WebP without VP8 / VP8L / VP8X first
        b"not an image",
    ],
)
def test_other_formats_are_refused_naming_the_accepted_ones(data):
    assert int(declared_pixels(tf.constant(data))) == -1
    with pytest.raises(tf.errors.InvalidArgumentError, match=", ".join(FORMATS)):
        decode(tf.constant(data))


@pytest.mark.parametrize(
    "make, size",
    [
        (gif, (0, 0)),
        (bmp, (37, 53)),
        (bmp, (-37, 53)),
        (webp_vp8, (37, 53)),
        (webp_vp8l, (37, 53)),
        (webp_vp8x, (37, 53)),
    ],
)
def test_header_size_reads_each_format(make, size):
    data = make() if make is gif else make(*size)
    want = [1, 1] if make is gif else [abs(size[0]), size[1]]
    assert [int(v) for v in header_size(tf.constant(data))] == want


@pytest.mark.parametrize(
    "fmt, kwargs, lossless",
    [
        ("PNG", {}, True),
        ("GIF", {}, True),  # PIL quantizes on writing; both decode the palette
        ("BMP", {}, True),
        ("WEBP", {"lossless": True}, True),
        ("WEBP", {"quality": 90}, False),
        ("JPEG", {}, False),
    ],
)
def test_ordinary_images_decode_as_pil_decodes_them(rng, fmt, kwargs, lossless):
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    data = _encoded(image, fmt, **kwargs)
    assert [int(v) for v in header_size(tf.constant(data))] == [37, 53]
    assert int(declared_pixels(tf.constant(data))) == 37 * 53
    got = decode(tf.constant(data)).numpy()
    assert got.shape == (37, 53, 3) and got.dtype == np.uint8
    if lossless:
        want = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        np.testing.assert_array_equal(got, want)


def test_animated_gif_counts_every_frame_and_gives_the_first(rng):
    frames = [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(5)]
    buffer = io.BytesIO()
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:])
    data = buffer.getvalue()
    assert int(declared_pixels(tf.constant(data))) == 5 * 30 * 40
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than 5000 pixels"):
        decode(tf.constant(data), max_pixels=5000)  # each frame alone fits
    want = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))  # frame 0
    np.testing.assert_array_equal(decode(tf.constant(data)).numpy(), want)
