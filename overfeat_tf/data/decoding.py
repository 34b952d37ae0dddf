"""Encoded image bytes: the formats taken, the sizes their headers declare,
and decoding only after checking them.

`tf.io.decode_image` allocates what a header declares before it reads a
pixel, so a file of a few kilobytes can ask for gigabytes (a 12000 x 12000
GIF of 107 KB, a 16383 x 16383 WebP of 10 KB). `decode` therefore reads the
header of each of the formats it takes, PNG, JPEG, GIF, BMP and WebP, and
refuses more than `max_pixels` before decoding; any other bytes (JPEG XL
too, which TensorFlow would decode) are refused with the list of formats.
Used for requests to the SavedModel and for the images of local folders.

What counts, per format (offsets in bytes, as the decoders read them):

- PNG: IHDR width and height (16-23, big-endian);
- JPEG: the frame header (`tf.image.extract_jpeg_shape`);
- GIF: the logical screen (6-9, little-endian), the sum of all frames'
  sizes (each image descriptor's), since giflib allocates every frame at
  its own size, and TensorFlow's output spans the widest and the tallest
  frame; a GIF whose blocks take over `_GIF_MAX_STEPS` steps to walk counts
  as too large;
- BMP: width and height (18-25, little-endian int32; a negative height is a
  top-down image);
- WebP: the first chunk, which must be `VP8 ` (14-bit sizes at 26-29),
  `VP8L` (14-bit sizes - 1 packed at 21-24) or `VP8X` (24-bit canvas
  sizes - 1 at 24-29; animation frames lie within the canvas).
"""

from __future__ import annotations

import tensorflow as tf

MAX_PIXELS = 1 << 26  # 67 megapixels: larger headers are refused before decoding
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WebP")
# Steps of the walk over a GIF's blocks (`_gif_frames`): about 2 a frame as
# encoders write them; a GIF that needs more (some 2,000 frames, or short
# sub-blocks on purpose) is refused. Under a second of CPU at most.
_GIF_MAX_STEPS = 1 << 12
_HEAD = 32  # bytes read for the fixed-offset headers

# The magic bytes as `tf.io.decode_image` tells formats apart.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", 0),
    (b"\xff\xd8\xff", 0),
    (b"GIF8", 0),
    (b"BM", 0),
    (b"WEBP", 8),  # after "RIFF" and a size
)


def decode(data, max_pixels: int = MAX_PIXELS):
    """Encoded image bytes -> uint8 [H, W, 3], after checking them.

    Checks, in order: the bytes are not empty, they are one of `FORMATS`,
    and their header declares at most `max_pixels` pixels. The decoder waits
    for the checks: in a graph nothing else orders a stateless decode after
    the asserts, and a huge header must fail before anything is allocated
    (and with the header's message). Animated GIF and WebP give their
    first frame.

    Raises:
        tf.errors.InvalidArgumentError: saying which check failed (eagerly
            at once, in a graph when run).
    """
    checks = [
        tf.debugging.assert_greater(
            tf.strings.length(data), 0, message="image_bytes holds an empty string"
        )
    ]
    with tf.control_dependencies([c for c in checks if c is not None]):  # None: eager
        pixels = declared_pixels(data)
    checks.append(
        tf.debugging.assert_non_negative(
            pixels,
            message="image_bytes holds no image of an accepted format: "
            f"one of {', '.join(FORMATS)} (a WebP's first chunk VP8, VP8L or VP8X)",
        )
    )
    checks.append(
        tf.debugging.assert_less_equal(
            pixels,
            tf.constant(max_pixels, tf.int64),
            message=f"image_bytes holds an image of more than {max_pixels} pixels "
            "(by its header; a GIF's frames count together)",
        )
    )
    with tf.control_dependencies([c for c in checks if c is not None]):
        data = tf.identity(data)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def image_format(data):
    """int32 index into `FORMATS` of encoded bytes, -1 for any other."""
    head = _head(data, 12)
    index = tf.constant(-1)
    for i, (magic, offset) in enumerate(_MAGIC):
        found = tf.strings.substr(head, offset, len(magic)) == magic
        if FORMATS[i] == "WebP":
            found &= (tf.strings.substr(head, 0, 4) == b"RIFF") & (
                tf.strings.length(data) > 12
            )
        index = tf.where(found & (index < 0), i, index)
    return index


def header_size(data):
    """(height, width) int64 that the header of encoded bytes declares: a
    GIF's logical screen, a WebP's canvas; (0, 0) where the header is cut
    short (the decoder refuses those), (-1, -1) for another format."""
    raw = tf.cast(tf.io.decode_raw(_head(data, _HEAD), tf.uint8), tf.int64)

    def number(start, count, big_endian=False):
        """The unsigned integer in raw[start : start + count]."""
        places = range(count - 1, -1, -1) if big_endian else range(count)
        return sum(raw[start + i] * 256**p for i, p in zip(range(count), places))

    def png():
        return number(20, 4, True), number(16, 4, True)

    def jpeg():
        shape = tf.cast(tf.image.extract_jpeg_shape(data), tf.int64)
        return shape[0], shape[1]

    def gif():
        return number(8, 2), number(6, 2)

    def bmp():
        signed = [
            tf.where(v >= 2**31, v - 2**32, v) for v in (number(22, 4), number(18, 4))
        ]
        return tuple(tf.abs(v) for v in signed)

    def webp():
        chunk = tf.strings.substr(_head(data, 16), 12, 4)
        lossless = number(21, 4)
        size = tf.case(
            [
                (
                    chunk == b"VP8 ",
                    lambda: tf.stack([number(28, 2), number(26, 2)]) % 2**14,
                ),
                (
                    chunk == b"VP8L",
                    lambda: tf.stack([lossless // 2**14 % 2**14, lossless % 2**14]) + 1,
                ),
                (
                    chunk == b"VP8X",
                    lambda: tf.stack([number(27, 3), number(24, 3)]) + 1,
                ),
            ],
            # The decoder takes other first chunks as a raw bitstream: refused.
            default=lambda: tf.constant([-1, -1], tf.int64),
        )
        return size[0], size[1]

    branches = [png, jpeg, gif, bmp, webp]
    size = tf.switch_case(
        image_format(data),
        [lambda f=f: tf.stack(f()) for f in branches],
        default=lambda: tf.constant([-1, -1], tf.int64),
    )
    return size[0], size[1]


def declared_pixels(data):
    """int64 pixels that decoding encoded bytes would allocate by their
    header: height x width, for a GIF at least the sum of its frames'
    sizes; -1 for bytes of no accepted format."""
    height, width = header_size(data)
    pixels = tf.where(height < 0, tf.constant(-1, tf.int64), height * width)

    def gif():
        # giflib holds every frame; TensorFlow's output spans the largest.
        frames, widest, tallest = _gif_frames(data)
        return tf.reduce_max([pixels, frames, widest * tallest])

    return tf.cond(image_format(data) == FORMATS.index("GIF"), gif, lambda: pixels)


def _head(data, size: int):
    """The first `size` bytes of `data`, zero-padded when it is shorter."""
    return tf.strings.substr(tf.strings.substr(data, 0, size) + b"\0" * size, 0, size)


@tf.function(input_signature=[tf.TensorSpec([], tf.string)], autograph=False)
def _gif_frames(data):
    """(sum of the frames' sizes, widest, tallest) int64 of a GIF, by a walk
    over its blocks; int64 max where the walk takes over `_GIF_MAX_STEPS`.

    A GIF is a run of blocks (GIF89a, sections 17-27): extensions (`!`,
    a label) and images (`,`, a descriptor, a colour table, a code size),
    each followed by sub-blocks of 1 + length bytes up to an empty one,
    then the trailer `;`. One step reads a block and skips its sub-blocks
    when they are a run of full (255-byte) ones, one more and the empty
    one, as encoders write them; other sub-blocks take more steps.
    """
    # Zero-padded: a walk stops at n, and reads from there stay inside.
    raw = tf.cast(tf.io.decode_raw(data + b"\0" * 256, tf.uint8), tf.int64)
    n = tf.size(raw, tf.int64) - 256

    def table(flags):  # bytes of the colour table that `flags` announces
        return tf.where(flags >= 128, 3 * 2 ** (flags % 8 + 1), 0)

    def step(position, in_blocks, pixels, width, height, done):
        # A block, unless among its sub-blocks already.
        b, _, _, _, _, w0, w1, h0, h1, flags = tf.unstack(
            tf.slice(raw, [position], [10])
        )
        image = ~in_blocks & (b == ord(","))
        block = in_blocks | image | (b == ord("!"))
        w, h = tf.where(image, w0 + 256 * w1, 0), tf.where(image, h0 + 256 * h1, 0)
        skip = tf.where(image, 11 + table(flags), 2)
        start = position + tf.where(in_blocks, tf.zeros_like(skip), skip)
        # Its sub-blocks: skip the full ones, then one, then the empty one.
        lengths = tf.strided_slice(raw, [tf.minimum(start, n)], [n + 1], [256])
        full = tf.argmax(tf.concat([lengths != 255, [True]], 0), output_type=tf.int64)
        last = tf.minimum(start + 256 * full, n)
        after = tf.minimum(last + 1 + raw[last], n)
        over = (raw[last] == 0) | (raw[after] == 0)
        return (
            tf.where(raw[last] == 0, last + 1, after + tf.cast(over, tf.int64)),
            ~over,
            pixels + w * h,
            tf.maximum(width, w),
            tf.maximum(height, h),
            ~block,  # the trailer, or bytes that are no block
        )

    zero = tf.constant(0, tf.int64)
    position, _, pixels, width, height, done = tf.while_loop(
        lambda position, in_blocks, pixels, width, height, done: ~done & (position < n),
        step,
        (
            tf.minimum(13 + table(raw[10]), n),
            tf.constant(False),
            zero,
            zero,
            zero,
            tf.constant(False),
        ),
        maximum_iterations=_GIF_MAX_STEPS,
    )
    walked = done | (position >= n)
    return tuple(tf.where(walked, v, tf.int64.max) for v in (pixels, width, height))
