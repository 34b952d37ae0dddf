"""Resuming a run: the newest checkpoint that restores, and its history.

`tf.train.CheckpointManager` trusts its `checkpoint` index file: a damaged
index reads as "no checkpoint" (a silent restart from epoch 0), and a
damaged latest checkpoint fails the restore while older ones are whole.
Here the checkpoints are found from their own files and tried newest
first. Each damaged one is reported in one line and moved to
`checkpoints/damaged/` (kept, not deleted), and the run resumes from the
newest that restores; when none restores, nothing is moved and the error
names every file. `history.csv` then loses the rows of the epochs the run
will train again, so that no epoch is ever listed twice.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable

import tensorflow as tf

from overfeat_tf.errors import InvalidValueError

logger = logging.getLogger(__name__)

# What a damaged file raises while it is read: TF's own errors, and the
# Python ones its C++ status codes become (OUT_OF_RANGE is an IndexError:
# "Read less bytes than requested", INVALID_ARGUMENT a ValueError).
_DAMAGE = (tf.errors.OpError, IndexError, ValueError, RuntimeError, OSError)


class CheckpointError(InvalidValueError):
    """No checkpoint of a run restores, though some exist."""


def checkpoints_in(directory: str) -> list[str]:
    """The checkpoint prefixes `ckpt-N` in `directory`, highest N first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = re.fullmatch(r"(ckpt-(\d+))\.index", name)
        if match:
            found.append((int(match.group(2)), os.path.join(directory, match.group(1))))
    return [prefix for _, prefix in sorted(found, reverse=True)]


def restore_newest(
    make_checkpoint: Callable[[], tf.train.Checkpoint], directory, repair=True
):
    """Restores the newest checkpoint of `directory` that reads whole.

    Args:
        make_checkpoint: returns a `tf.train.Checkpoint` of the run's
            objects (a fresh one per try, so a failed read leaves nothing
            pending).
        directory: the run's checkpoint folder.
        repair: set damaged checkpoints aside and rewrite the index (False
            on the workers that only read the chief's folder).

    Returns:
        The restored prefix, or None when the folder holds no checkpoint.

    Raises:
        CheckpointError: checkpoints exist and none restores.
        AssertionError: a whole checkpoint of another model (not damage).
    """
    prefixes = checkpoints_in(directory)
    damaged = []
    for prefix in prefixes:
        try:
            make_checkpoint().restore(prefix).assert_existing_objects_matched()
        except _DAMAGE as error:
            damaged.append((prefix, _first_line(error)))
            continue
        if not repair:
            return prefix
        for bad, why in damaged:
            aside = _set_aside(bad)
            logger.warning(
                "Checkpoint %s is damaged (%s); moved to %s, resuming from %s.",
                bad,
                why,
                aside,
                os.path.basename(prefix),
            )
        if damaged or not _index_reads(directory):
            _write_index(directory, prefixes[len(damaged) :])
        return prefix
    if damaged:
        raise CheckpointError(
            f"No checkpoint in {directory} restores: "
            + "; ".join(f"{os.path.basename(p)}: {why}" for p, why in damaged)
            + f". Move {directory} away to start the run over."
        )
    return None


class ScratchManager:
    """The checkpoint manager of a worker other than the chief.

    Under `MultiWorkerMirroredStrategy` every worker must save (a save
    reads the replicas' values collectively), but only the chief's files
    are kept: each save goes to a fresh temporary folder, deleted after.

    Args:
        checkpoint: the run's `tf.train.Checkpoint`.
        chief_directory: the chief's checkpoint folder (what
            `latest_checkpoint` reports).
    """

    def __init__(self, checkpoint: tf.train.Checkpoint, chief_directory: str):
        self.checkpoint = checkpoint
        self.chief_directory = chief_directory

    def save(self, checkpoint_number=None):
        with tempfile.TemporaryDirectory(prefix="overfeat-worker-") as scratch:
            manager = tf.train.CheckpointManager(self.checkpoint, scratch, 1)
            manager.save(checkpoint_number=checkpoint_number)

    @property
    def latest_checkpoint(self):
        return tf.train.latest_checkpoint(self.chief_directory)


def trim_history(path: str, epochs_done: int) -> None:
    """Drops the rows of `history.csv` for epochs >= `epochs_done`.

    A run resumed at epoch E trains E again; its row, written before the
    checkpoint that ends the epoch (or left by a newer, damaged checkpoint),
    would otherwise appear twice.
    """
    if not os.path.exists(path):
        return
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    again = [row[0] for row in body if row and int(float(row[0])) >= epochs_done]
    if not again:
        return
    kept = [row for row in body if row and int(float(row[0])) < epochs_done]
    logger.warning(
        "%s: dropped the rows of epoch%s %s, which the run trains again.",
        path,
        "s" if len(again) > 1 else "",
        ", ".join(again),
    )
    with open(path + ".tmp", "w", newline="") as file:
        csv.writer(file).writerows([header, *kept])
    os.replace(path + ".tmp", path)


def _index_reads(directory: str) -> bool:
    """Whether the `checkpoint` index file parses (TF reads a garbage one as
    no checkpoint at all)."""
    return tf.train.get_checkpoint_state(directory) is not None


def _write_index(directory: str, prefixes: list[str]) -> None:
    """The `checkpoint` index file (a text `CheckpointState`) listing
    `prefixes`, newest first, which `tf.train.CheckpointManager` reads to
    keep its `max_to_keep` newest."""
    names = [os.path.basename(prefix) for prefix in prefixes]
    lines = [f'model_checkpoint_path: "{names[0]}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in reversed(names)]
    path = os.path.join(directory, "checkpoint")
    with open(path + ".tmp", "w") as file:
        file.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def _set_aside(prefix: str) -> str:
    directory = os.path.join(os.path.dirname(prefix), "damaged")
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(os.path.dirname(prefix)):
        if name.startswith(os.path.basename(prefix) + "."):
            shutil.move(os.path.join(os.path.dirname(prefix), name), directory)
    return directory


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
