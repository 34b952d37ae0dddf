"""Recipes read strictly from YAML into `ExperimentConfig`s, with overrides.

The recipes in `configs/` (installed as `overfeat_tf.configs`) are YAML
files that `load_config` reads by path or by name; every key and value is
checked, so a typo fails at once, naming the file and the dotted key.
Configs are never mutated: "dotted.key=value" overrides build new ones.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml

from overfeat_tf.config.schema import ExperimentConfig
from overfeat_tf.config.yaml12 import BOOLS, FLOAT, INT, NULLS, Dumper, load_yaml
from overfeat_tf.errors import InvalidTypeError, InvalidValueError, MissingFileError


def _type_name(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return f"one of {list(args)}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _type_name(a) for a in args)
    if origin is tuple:
        return f"a list of {_type_name(args[0])}"
    return hint.__name__


def _convert(value, hint, source: str, key: str):
    """`value` checked against the type `hint`; lists become tuples.

    int is accepted for float (as a float), bool is not accepted for int or
    float, None only for `X | None`, and a mapping for a nested dataclass.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, source, key + ".")
    if origin in (typing.Union, types.UnionType):  # `X | None`
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        try:
            return _convert(value, inner, source, key)
        except TypeError:
            pass  # the message below names the whole union
    elif origin is Literal:
        if isinstance(value, str) and value in args:
            return value
    elif origin is tuple and isinstance(value, (list, tuple)):
        return tuple(
            _convert(item, args[0], source, f"{key}[{i}]")
            for i, item in enumerate(value)
        )
    elif isinstance(value, bool):
        if hint is bool:
            return value
    elif hint is float and isinstance(value, (int, float)):
        return float(value)
    elif origin is None and isinstance(value, hint):
        return value
    raise InvalidTypeError(
        f"{source}: {key} must be {_type_name(hint)}. "
        f"Received: {key}={value!r} of type {type(value).__name__}"
    )


def _from_dict(cls, data, source: str, prefix: str = ""):
    """Builds the dataclass `cls` from a mapping, checking every key and value.

    Missing keys take the field's default. Errors name `source` (the file)
    and the dotted key (`prefix` + field name).
    """
    section = prefix.rstrip(".") or "the top level"
    if data is None and not prefix:
        data = {}
    if not isinstance(data, dict):
        raise InvalidTypeError(
            f"{source}: {section} must be a mapping of keys to values. "
            f"Received: {section}={data!r} of type {type(data).__name__}"
        )
    hints = typing.get_type_hints(cls)
    valid = [field.name for field in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in valid:
            raise InvalidValueError(
                f"{source}: unknown key '{prefix}{key}'. Valid keys at "
                f"{section}: {valid}. Received: {prefix}{key}={value!r}"
            )
        kwargs[key] = _convert(value, hints[key], source, prefix + key)
    try:
        return cls(**kwargs)
    except ValueError as error:
        raise InvalidValueError(f"{source}, at {section}: {error}") from None


def _bundled_dir():
    """The folder of the bundled recipes, installed or in a source checkout."""
    try:
        return importlib.resources.files("overfeat_tf.configs")
    except ModuleNotFoundError:  # a checkout not (re)installed since configs/
        return Path(__file__).resolve().parents[2] / "configs"


def bundled_recipes() -> list[str]:
    """Names of the recipes shipped with the package, e.g. `"shapes_accurate"`."""
    files = _bundled_dir().iterdir()
    return sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml"))


def _resolve(path_or_name: str | os.PathLike):
    path = Path(path_or_name)
    if path.is_file():
        return path
    name = str(path_or_name)
    bundled = _bundled_dir() / (name if name.endswith(".yaml") else name + ".yaml")
    if os.sep not in name and "/" not in name and bundled.is_file():
        return bundled
    looks_like_a_path = (
        "/" in name or os.sep in name or name.endswith((".yaml", ".yml"))
    )
    what = f"No config file at {name!r}" if looks_like_a_path else f"No recipe {name!r}"
    raise MissingFileError(
        f"{what}: load_config takes a YAML file or the name of a bundled recipe "
        f"({', '.join(bundled_recipes())})"
    )


_OVERRIDE_FORMS = {
    bool: "true or false",
    int: "a whole number, e.g. 3",
    float: "a number, e.g. 0.5 or 3e-4",
}


def _read_override(text: str, hint, source: str, key: str):
    """The value of an override's `text`, read as the type `hint` of its key.

    A str (or choice) key takes `text` as written; an int, float or bool key
    takes a number or true/false (YAML 1.2 spellings); an optional key also
    takes null (`null`, `~` or nothing). Only list and section keys read
    YAML, with the recipes' rules. `_convert` then checks the value.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    inner = hint
    if origin in (typing.Union, types.UnionType):  # `X | None`
        (inner,) = [a for a in args if a is not type(None)]
    if dataclasses.is_dataclass(inner) or typing.get_origin(inner) is tuple:
        try:
            return load_yaml(text, source, key + ".")
        except yaml.YAMLError as error:
            raise InvalidValueError(
                f"{source}: the value of a list or section override must be "
                f"valid YAML ({getattr(error, 'problem', None) or error}). "
                f"Received: {key}={text!r}"
            ) from None
    if inner is not hint and text.strip() in NULLS:
        return None
    if inner is str or typing.get_origin(inner) is Literal:
        return text
    stripped = text.strip()
    if inner is bool and stripped in BOOLS:
        return BOOLS[stripped]
    if inner is int and INT.fullmatch(stripped):
        return int(stripped)
    if inner is float and FLOAT.fullmatch(stripped):
        return float(stripped)
    if inner is float and re.fullmatch(r"[-+]?\.?(inf|infinity|nan)", stripped, re.I):
        return float(stripped.replace(".", "", 1))  # for the rule's message
    form = f" ({_OVERRIDE_FORMS[inner]})" if inner in _OVERRIDE_FORMS else ""
    raise InvalidTypeError(
        f"{source}: {key} must be {_type_name(hint)}{form}. Received: {key}={text!r}"
    )


def _hint_at(parts: list[str]):
    """The type of the dotted key `parts` in `ExperimentConfig`, or None."""
    cls = ExperimentConfig
    for part in parts[:-1]:
        cls = typing.get_type_hints(cls)[part]
    return typing.get_type_hints(cls).get(parts[-1])


def _apply_override(data: dict, override: str, source: str) -> dict:
    """A copy of the config dict `data` with one "dotted.key=value" applied.

    The value is read by the type of the key (`_read_override`).
    """
    key, sep, text = override.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise InvalidValueError(
            f"{source}: an override must be 'dotted.key=value', e.g. "
            f"'train.epochs=3'. Received: override={override!r}"
        )
    data = dict(data)
    node = data
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            sections = [k for k, v in node.items() if isinstance(v, dict)]
            where = ".".join(parts[:depth]) or "the top level"
            raise InvalidValueError(
                f"{source}: an override's key must go through sections; "
                f"'{'.'.join(parts[: depth + 1])}' is not one (sections at "
                f"{where}: {sections}). Received: override={override!r}"
            )
        node[part] = dict(node[part])
        node = node[part]
    hint = _hint_at(parts)
    # An unknown key keeps the text: `_from_dict` names it and the valid keys.
    value = (
        text if hint is None else _read_override(text, hint, source, ".".join(parts))
    )
    old = node.get(parts[-1])
    merge = isinstance(old, dict) and isinstance(value, dict)
    node[parts[-1]] = {**old, **value} if merge else value
    return data


def load_config(
    path_or_name: str | os.PathLike, overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """Reads an `ExperimentConfig` from a YAML recipe, strictly.

    Keys left out take their defaults (the paper's recipe). Every key must be
    a field and every value of the field's type: int is accepted for float,
    bool is not accepted for int or float, a list is read as a tuple, null
    only for optional fields, and a choice must be one of the listed values.
    Numbers are read as in YAML 1.2 (`1e-5` is a float, `1:30` and `010`
    are not the YAML 1.1 ints 90 and 8), floats must be finite, and a key
    given twice in one mapping is an error.

    Args:
        path_or_name: a YAML file, or the name of a recipe in `configs/`
            (e.g. `"shapes_accurate"`; `bundled_recipes()` lists them).
        overrides: `"dotted.key=value"` strings applied in order on top of
            the file, each value read by the type of its key: a str key
            takes the text as written (`"output_dir=runs/exp #2"`), an
            int, float or bool key a number or true/false
            (`"train.epochs=3"`, `"train.learning_rate=3e-4"`), an optional
            key also null (`"data.data_dir=null"`), and list and section
            keys YAML (`"train.lr_decay_epochs=[1, 2]"`,
            `"model={width: 0.5}"`).

    Returns:
        A new, frozen `ExperimentConfig`.

    Raises:
        FileNotFoundError: if `path_or_name` is neither a file nor a bundled
            recipe; the message lists the recipes.
        ValueError: for an unknown key, a key given twice, a value out of
            range (or not finite), a malformed override or invalid YAML; the
            message names the file, the dotted key or the override.
        TypeError: for a value of the wrong type, naming the file, the
            dotted key, the expected type and the value.

    Example:

    ```python
    config = load_config("shapes_accurate", ["train.epochs=3"])
    config.train.epochs  # 3
    ```
    """
    path = _resolve(path_or_name)
    source = str(path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), source)
    except yaml.YAMLError as error:
        raise InvalidValueError(f"{source} is not valid YAML: {error}") from None
    config = _from_dict(ExperimentConfig, data, source)
    for override in overrides:
        where = f"{source} (override {override!r})"
        data = _apply_override(config_to_dict(config), override, where)
        config = _from_dict(ExperimentConfig, data, where)
    return config


def config_to_dict(config) -> dict:
    """The config as nested plain dicts, lists and scalars (YAML-ready).

    Args:
        config: an `ExperimentConfig` or one of its sections.

    Returns:
        A new dict with every field; tuples become lists.
    """

    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def save_config(config: ExperimentConfig, path: str | os.PathLike) -> None:
    """Writes `config` as YAML that `load_config` reads back to an equal config.

    Args:
        config: the `ExperimentConfig` to write.
        path: the YAML file; missing parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump(config_to_dict(config), Dumper=Dumper, sort_keys=False)
    path.write_text(text, encoding="utf-8")
