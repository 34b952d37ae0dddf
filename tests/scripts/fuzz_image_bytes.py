"""Fuzzes the SavedModel's `classify` byte signature in a process of its own.

Requests are small images in each accepted format (PNG, JPEG, GIF, BMP,
WebP) of any aspect ratio, then header fields overwritten (sizes up to
2^32), truncated, or with bits flipped. Each request must be answered or
refused with `InvalidArgumentError`; anything else fails the run. Peak
memory (`ru_maxrss`) is this process's own, which is why it runs apart from
the test session.

    python tests/scripts/fuzz_image_bytes.py OUT_DIR EXAMPLES

Prints JSON: counts of answered and refused requests, the peak resident
memory after loading the SavedModel and after the fuzz (MiB).
"""

import io
import json
import os
import resource
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

import overfeat_tf as of  # noqa: E402
from overfeat_tf.export.saved_model import export_saved_model  # noqa: E402
from overfeat_tf.inference import Classifier  # noqa: E402

FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "GIF": "GIF", "BMP": "BMP", "WebP": "WEBP"}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@st.composite
def requests(draw):
    """Encoded bytes: a small image, then maybe a mangled header or body."""
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    height = draw(st.integers(1, 48))
    width = draw(st.integers(1, 48))
    pixels = np.full((height, width, 3), draw(st.integers(0, 255)), np.uint8)
    buffer = io.BytesIO()
    extra = {"lossless": True} if fmt == "WebP" else {}
    Image.fromarray(pixels).save(buffer, FORMATS[fmt], **extra)
    data = bytearray(buffer.getvalue())
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["size", "truncate", "flip"]))
        if kind == "size" and len(data) > 8:  # a header field, 2 or 4 bytes
            at = draw(st.integers(0, min(len(data), 40) - 4))
            span = draw(st.sampled_from([2, 4]))
            value = draw(st.integers(0, 2 ** (8 * span) - 1))
            order = draw(st.sampled_from(["big", "little"]))
            data[at : at + span] = value.to_bytes(span, order)
        elif kind == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


def main():
    out, examples = sys.argv[1], int(sys.argv[2])
    model = of.overfeat_fast(10, width=0.125)
    path = export_saved_model([Classifier(model, scales=(231, 270))], out)
    classify = tf.saved_model.load(path).signatures["classify"]
    warm = io.BytesIO()
    Image.fromarray(np.zeros((240, 320, 3), np.uint8)).save(warm, "PNG")
    classify(image_bytes=tf.constant([warm.getvalue()]))  # traced and allocated
    counts = {"answered": 0, "refused": 0, "loaded_peak_mib": peak_mib()}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests())
    def request(data):
        try:
            outputs = classify(image_bytes=tf.constant([data]))
        except tf.errors.InvalidArgumentError:
            counts["refused"] += 1
            return
        scores = outputs["scores"].numpy()
        assert np.isfinite(scores).all() and scores.shape == (1, 5), scores
        counts["answered"] += 1

    request()
    counts["peak_mib"] = peak_mib()
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
