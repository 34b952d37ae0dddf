"""Strict YAML for recipes: YAML 1.2 numbers and no key given twice."""

from __future__ import annotations

import re

import yaml

from overfeat_tf.errors import InvalidValueError

# === YAML ===
# PyYAML reads YAML 1.1, which guesses: `1:30` is the int 90, `010` is 8 and
# `1e-5` a string. Recipes are read with YAML 1.2's core schema for numbers
# instead (decimal ints; floats with an optional dot and exponent, `.inf`
# and `.nan`, which the rules then refuse), and a key given twice is an
# error rather than the last one winning.
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
INT = re.compile(r"[-+]?[0-9]+")
FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
NON_FINITE = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
# YAML 1.2's core schema spellings, for overrides of bool and optional keys.
BOOLS = {"true": True, "True": True, "TRUE": True}
BOOLS |= {"false": False, "False": False, "FALSE": False}
NULLS = ("null", "Null", "NULL", "~", "")


class Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` with YAML 1.2 numbers (see above)."""


def _scalar_error(node, what: str):
    return yaml.constructor.ConstructorError(
        None, None, f"cannot read {node.value!r} as {what}", node.start_mark
    )


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    if not INT.fullmatch(text):
        raise _scalar_error(node, "an int (decimal digits)")
    return int(text)


def _construct_float(loader, node):
    text = loader.construct_scalar(node)
    if NON_FINITE.fullmatch(text):  # `.inf`, `-.inf`, `.nan`: rules refuse them
        return float(text.replace(".", "", 1))
    if not FLOAT.fullmatch(text):
        raise _scalar_error(node, "a float")
    return float(text)


Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp) for tag, regexp in resolvers if tag not in (INT_TAG, FLOAT_TAG)
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# A resolver's pattern is matched at the start only: anchor its end too.
INT_SCALAR = re.compile(rf"(?:{INT.pattern})\Z")
FLOAT_SCALAR = re.compile(rf"(?:{FLOAT.pattern}|{NON_FINITE.pattern})\Z")
Loader.add_implicit_resolver(INT_TAG, INT_SCALAR, list("-+0123456789"))
Loader.add_implicit_resolver(FLOAT_TAG, FLOAT_SCALAR, list("-+0123456789."))
Loader.add_constructor(INT_TAG, _construct_int)
Loader.add_constructor(FLOAT_TAG, _construct_float)


class Dumper(yaml.SafeDumper):
    """`yaml.SafeDumper` that quotes strings `Loader` would read as floats."""


Dumper.add_implicit_resolver(FLOAT_TAG, FLOAT_SCALAR, list("-+0123456789."))


def _duplicate_key(node, prefix: str = "", seen=None):
    """The first key given twice in one mapping under `node`, or None.

    Returns `(dotted_key, first_line, second_line)` (lines from 1).
    """
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias met again
        return None
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if isinstance(key_node, yaml.ScalarNode):
                dotted = f"{prefix}{key_node.value}"
                line = key_node.start_mark.line + 1
                name = (key_node.tag, key_node.value)
                if name in lines:
                    return dotted, lines[name], line
                lines[name] = line
                found = _duplicate_key(value_node, dotted + ".", seen)
            else:
                found = _duplicate_key(value_node, prefix, seen)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _duplicate_key(item, f"{prefix.rstrip('.')}[{i}].", seen)
            if found:
                return found
    return None


def load_yaml(text: str, source: str, prefix: str = ""):
    """`text` read strictly (see `Loader`), as plain Python values.

    Raises:
        yaml.YAMLError: for text that is not YAML.
        ValueError: for a key given twice, naming `source`, the dotted key
            (`prefix` + key) and both lines.
    """
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        duplicate = node is not None and _duplicate_key(node, prefix)
        if duplicate:
            key, first, second = duplicate
            lines = (
                f"line {first}" if first == second else f"lines {first} and {second}"
            )
            raise InvalidValueError(
                f"{source}: key '{key}' is given twice; each key may appear "
                f"once in its section. Received: '{key}' twice, on {lines}"
            )
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
