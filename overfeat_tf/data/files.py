"""Image files named by users (prediction): listing and decoding, with errors
that name the file."""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np
import tensorflow as tf

from overfeat_tf.data.folders import decode
from overfeat_tf.errors import InvalidValueError, MissingFileError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def image_files(inputs: Iterable[str]) -> list[str]:
    """The image files among `inputs`: files as given, folders' images sorted.

    A folder contributes the files directly in it whose extension is in
    `IMAGE_EXTENSIONS` (any case); it is not searched recursively.

    Raises:
        FileNotFoundError: for an input that does not exist.
        ValueError: if no image file is found.
    """
    inputs = list(inputs)
    files = []
    for path in inputs:
        if os.path.isdir(path):
            names = sorted(os.listdir(path))
            files += [
                os.path.join(path, name)
                for name in names
                if name.lower().endswith(IMAGE_EXTENSIONS)
            ]
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise MissingFileError(f"No such image file or folder: {path}")
    if not files:
        raise InvalidValueError(
            f"No image files ({', '.join(IMAGE_EXTENSIONS)}) in {inputs}"
        )
    return files


def read_image(path: str) -> np.ndarray:
    """The RGB uint8 [H, W, 3] pixels of an image file.

    Raises:
        ValueError: naming the file, if it cannot be read or decoded.
    """
    try:
        return decode(tf.io.read_file(path)).numpy()
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", str(error)).strip().splitlines()[0]
        raise InvalidValueError(f"Cannot decode image {path}: {message}") from None
