"""The `overfeat` command line, reachable from the package.

Its commands live in `overfeat_cli` (beside this package, one module per
command, importable without TensorFlow); `overfeat_tf.cli.main(["predict",
...])` runs a command in-process.
"""

from overfeat_cli import COMMANDS, main

__all__ = ["COMMANDS", "main"]
