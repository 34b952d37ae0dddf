"""Loading a saved OverFeat (`.keras` file or run folder), with errors that
say why a file cannot be read."""

from __future__ import annotations

import os
import re
import warnings
import zipfile

import keras

from overfeat_tf.errors import InvalidValueError, MissingFileError
from overfeat_tf.models import OverFeat


def load_model(path: str) -> OverFeat:
    """A saved OverFeat: a `.keras` file, or a run folder holding `model.keras`.

    Raises:
        FileNotFoundError: naming the file when there is none.
        ValueError: naming the file when it does not load (damaged, not a
            `.keras` archive, weights of another shape, refused by safe
            mode) or holds another kind of model.
    """
    path = str(path)
    if os.path.isdir(path):
        path = os.path.join(path, "model.keras")
    if not os.path.isfile(path):
        raise MissingFileError(f"No trained model at {path}")
    # Keras warns layer by layer before it fails on weights of another
    # shape: the warnings are shown only when the model loads.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = keras.saving.load_model(path, compile=False)
        except _UNREADABLE as error:
            raise InvalidValueError(
                f"Cannot load {path}: {_why_not_loaded(error)}"
            ) from None
    for warning in caught:
        warnings.showwarning(
            warning.message, warning.category, warning.filename, warning.lineno
        )
    if not isinstance(model, OverFeat):
        raise InvalidValueError(
            f"{path} holds a {type(model).__name__}, not an OverFeat model."
        )
    return model


# What keras.saving.load_model raises for a file it cannot read as a model.
_UNREADABLE = (OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile)


def _why_not_loaded(error: Exception) -> str:
    """Keras' reason in one line (its shape mismatch report runs to hundreds
    of lines of weight values; its "File not found" means "not a zip")."""
    text = str(error)
    shapes = re.search(
        r"variable.shape=(\(.*?\)), Received: value.shape=(\(.*?\))"
        r".*?Target variable: <Variable path=([^,]+)",
        text,
        re.DOTALL,
    )
    if shapes:
        expected, found, name = shapes.groups()
        return (
            f"its weights do not fit its architecture ({name} is {expected} "
            f"in the config, {found} in the weights)"
        )
    if "File not found" in text or isinstance(error, zipfile.BadZipFile):
        return "not a .keras archive (a damaged or truncated file?)"
    if isinstance(error, TypeError) and "could not be deserialized" in text:
        return "its config.json does not describe a model this package builds"
    if isinstance(error, KeyError) and "no item named" in text:
        return f"not a whole .keras archive ({text.strip(chr(34))})"
    if isinstance(error, KeyError):
        return f"its config.json lacks the key {text}"
    lines = text.strip().splitlines() or [type(error).__name__]
    return lines[0][:300]
