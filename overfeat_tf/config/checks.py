"""The rules every config field is checked against, with errors that name
the class, the key and the value received."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Literal

from overfeat_tf import architectures
from overfeat_tf.errors import InvalidValueError

SPECS = {"fast": architectures.FAST, "accurate": architectures.ACCURATE}
# Initializers that need no Keras lookup (`layers.INITIALIZERS`).
OWN_INITIALIZERS = ("he_normal", "paper")
# Seeds go to `keras.utils.set_random_seed` (NumPy takes [0, 2**32)) and,
# times 1_000_003 plus the epoch, to tf.data (int64): [0, 2**31) fits both.
SEED_LIMIT = 2**31


def finite(value) -> bool:
    """Whether every float in `value` (a scalar or a tuple) is finite."""
    items = value if isinstance(value, tuple) else (value,)
    return all(not isinstance(v, float) or math.isfinite(v) for v in items)


def require(config, name: str, ok: bool, rule: str) -> None:
    """Raises "Class.name must be rule. Received: name=value" unless `ok`.

    A float that is not finite (inf, nan) never passes: the rule then reads
    "a finite number {rule}".
    """
    value = getattr(config, name)
    if not finite(value):
        ok = False
        many = isinstance(value, tuple)
        rule = f"finite numbers: {rule}" if many else f"a finite number {rule}"
    if not ok:
        raise InvalidValueError(
            f"{type(config).__name__}.{name} must be {rule}. Received: {name}={value!r}"
        )


def check_initializer(config, key: str = "initializer") -> None:
    """`config.<key>` is ours or one that `keras.initializers.get` takes.

    Keras is imported only for names other than ours (it is loaded anyway
    by the time a model is built).
    """
    name = getattr(config, key)
    if isinstance(name, str) and name in OWN_INITIALIZERS:
        return
    import keras

    try:
        ok = type(keras.initializers.get(name)) is not keras.initializers.Initializer
    except Exception:  # Keras raises ValueError, KeyError, TypeError
        ok = False
    rule = (
        f"one of {list(OWN_INITIALIZERS)} or a name that "
        "keras.initializers.get takes (e.g. 'glorot_uniform', 'lecun_normal')"
    )
    require(config, key, ok, rule)


def check_choices(config) -> None:
    """Checks every `Literal[...]` field of `config` against its choices."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        if typing.get_origin(hints[field.name]) is Literal:
            choices = typing.get_args(hints[field.name])
            value = getattr(config, field.name)
            ok = isinstance(value, str) and value in choices
            require(config, field.name, ok, f"one of {list(choices)}")


def check_merge_threshold(config) -> None:
    """A match score (`merge.match_score`) lies in [0, 2)."""
    ok = 0 <= config.merge_threshold < 2
    require(config, "merge_threshold", ok, "in [0, 2), the range of match scores")


def check_scale_range(config, lowest: float = 1.0) -> None:
    """[low, high] with lowest <= low <= high (and 0 < low)."""
    low, high = (config.scale_range + (0.0, 0.0))[:2]
    bound = "0 <" if lowest == 0 else f"{lowest:g} <="
    require(
        config,
        "scale_range",
        len(config.scale_range) == 2 and lowest <= low <= high and low > 0,
        f"two factors [low, high] with {bound} low <= high",
    )
