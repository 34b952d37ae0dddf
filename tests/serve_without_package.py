"""Runs every signature of a SavedModel as a deployment would: TensorFlow
only, never this package. Used by test_export_saved_model.py.

    python serve_without_package.py SAVED_MODEL IMAGES.npy ENCODED.json OUT.npz
"""

import json
import sys

import numpy as np
import tensorflow as tf


def main(path, images_file, encoded_file, out_file):
    model = tf.saved_model.load(path)
    images = tf.constant(np.load(images_file))
    with open(encoded_file) as f:
        encoded = tf.constant([bytes.fromhex(h) for h in json.load(f)])
    out = {}
    for name, signature in model.signatures.items():
        inputs = {"images": images} if "images" in name else {"image_bytes": encoded}
        for key, value in signature(**inputs).items():
            value = value.numpy()
            if value.dtype == object:  # strings: stored as text, no pickles
                value = value.astype(bytes).astype(str)
            out[f"{name}/{key}"] = value
    np.savez(out_file, **out)
    if any(m.startswith("overfeat_tf") for m in sys.modules):
        sys.exit("overfeat_tf was imported")


if __name__ == "__main__":
    main(*sys.argv[1:])
