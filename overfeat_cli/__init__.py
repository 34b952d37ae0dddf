"""The `overfeat` command line: its flags, help and dispatch.

The console script `overfeat` runs `main` here. This module imports only
the standard library, so `overfeat --help` and usage errors answer at once;
each command's module here (`add_parser`, `run`) imports TensorFlow only when it
runs. It sits beside the package, not in it, because importing any module of
`overfeat_tf` runs `overfeat_tf/__init__.py`, which imports Keras (its model
classes must be registered before `keras.saving.load_model` reads a file).

Subcommands:
    quickstart: train, evaluate and export all three tasks on the built-in
        data set into one folder, with a summary, pictures and curves.
    describe: a network's layer table with each layer's output size at an
        input size, its parameters and multiply-adds, and the geometry.
    train: train a classifier, or a box regressor on one (`--task
        localize`), from a recipe in configs/ (resumes a run that was
        interrupted when run again with the same output folder).
    evaluate: the paper's Table 2 protocols, or the localization ablation
        (`--task localize`), on a data set split.
    predict: the top-5 classes, or boxes (localize, detect), of image
        files, folders (searched recursively) and VOC split lists, printed
        and written as JSON (and, for boxes, drawn into PNGs).
    export: a SavedModel for TF Serving, or a TFLite file (the dense
        model or the whole pipeline), checked against the pipeline.

Example:
    overfeat describe --network accurate --image-size 461x569 --stride fine
    overfeat train --config shapes_accurate train.epochs=3
    overfeat evaluate --config shapes_fast
    overfeat predict --model runs/shapes_fast photos/
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile

from overfeat_cli import describe, evaluate, export, flags, predict, quickstart, train

__all__ = ["COMMANDS", "build_parser", "main"]

# Each command's module: `add_parser(commands)` and `run(args) -> str`.
_MODULES = (quickstart, describe, train, evaluate, predict, export)
COMMANDS = {module.__name__.rsplit(".", 1)[1]: module.run for module in _MODULES}


def build_parser() -> argparse.ArgumentParser:
    """The `overfeat` parser, one subparser per command (no TensorFlow)."""
    parser = flags.Parser(
        prog="overfeat",
        description=(
            "OverFeat (Sermanet et al., ICLR 2014) for Keras 3 / TensorFlow. "
            "Exit status: 0 done; 2 a bad flag, config key, file or input, "
            "explained on one line of stderr; 1 an unexpected failure (traceback). "
            "TensorFlow's start-up notices are hidden; TF_CPP_MIN_LOG_LEVEL=0 "
            "shows them."
        ),
        **flags.help_format(),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for module in _MODULES:
        module.add_parser(commands)
    for command in commands.choices.values():
        command.set_defaults(command_parser=command)
    return parser


# TensorFlow's notices at start-up: written to stderr before its logging is
# configured (so TF_CPP_MIN_LOG_LEVEL does not reach them), or, for cuInit,
# as an error on every machine without a GPU.
_START_UP_NOTICES = re.compile(
    "|".join(
        [
            r"All log messages before absl::InitializeLog\(\) is called",
            r"oneDNN custom operations are on",
            r"Could not find cuda drivers on your machine",
            r"cpu_feature_guard\.cc",
            r"To enable the following instructions: ",
            r"failed call to cuInit",
        ]
    )
)


# Commands that only run the inference graphs. oneDNN's convolutions run
# the fully connected layers of the fine-stride graphs (weight-bound at
# these batch sizes) up to 5x slower than TensorFlow's own Eigen kernels:
# with TF_ENABLE_ONEDNN_OPTS=0 the graphs ran 1.7-3.6x faster
# (benchmarks/threads.py), while training ran 2.8x slower and lost bf16 on
# AMX (benchmarks/training.py). So these commands default to Eigen, and
# train and quickstart keep oneDNN.
INFERENCE_COMMANDS = ("evaluate", "predict", "export", "describe")


def tensorflow_environment(command: str) -> dict:
    """The environment defaults `command` starts TensorFlow with (a value
    the user set is kept)."""
    defaults = {"TF_CPP_MIN_LOG_LEVEL": "2"}  # TensorFlow's own warnings off
    if command in INFERENCE_COMMANDS:
        defaults["TF_ENABLE_ONEDNN_OPTS"] = "0"
    return defaults


def _start_tensorflow(command: str):
    """Import TensorFlow (with `tensorflow_environment(command)`'s defaults)
    and find its devices, with its start-up notices filtered out of stderr
    (every other line it writes is kept). TF_CPP_MIN_LOG_LEVEL=0 also keeps
    the notices. In a process that imported TensorFlow already (a command
    run in-process), the defaults could no longer apply: nothing is set.
    """
    if "tensorflow" in sys.modules:
        return
    for key, value in tensorflow_environment(command).items():
        os.environ.setdefault(key, value)
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        return
    # The notices come from C++ code, so fd 2 itself goes to a file meanwhile.
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # where cuInit fails
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(True)
            sys.stderr.write(
                "".join(line for line in lines if not _START_UP_NOTICES.search(line))
            )


def main(argv: list[str] | None = None) -> int:
    """Run `overfeat ARGV`; returns the exit status (see `overfeat --help`)."""
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    _start_tensorflow(args.command)
    if not sys.stdout.isatty():  # a log file: no tfds progress bars in it
        import tensorflow_datasets as tfds

        tfds.disable_progress_bar()

    from overfeat_tf.errors import OverfeatError

    try:
        print(COMMANDS[args.command](args))
    except (OverfeatError, OSError) as error:
        if isinstance(error, OSError) and not (
            isinstance(error, OverfeatError) or error.filename
        ):
            raise  # not about a file the user named: a bug, with its traceback
        print(f"overfeat {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
