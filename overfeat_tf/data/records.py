"""Records: what readers return, and what they do with bad records.

Every reader returns a `LabeledData`: one split as an unbatched
`tf.data.Dataset` of canonical elements (see `readers`). Local detection
folders are first parsed in Python into `Record`s, one per image, with boxes
still in the source format.

Bad data is reported, never dropped silently: a `BadRecords` raises on the
first bad record under `on_bad="error"`, naming the record and its file, or
counts it under `on_bad="skip"` and logs one warning with the counts per
reason.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import re

import tensorflow as tf

from overfeat_tf.errors import InvalidValueError

logger = logging.getLogger(__name__)

ON_BAD = ("error", "skip")

# Why a record can be bad, with what was expected of it.
MISSING_IMAGE = "missing image file"
UNDECODABLE_IMAGE = "undecodable image"
UNKNOWN_CLASS = "unknown class"
BAD_ANNOTATION = "unreadable annotation"
DUPLICATE_ID = "duplicate id"
_EXPECTED = {
    MISSING_IMAGE: "Expected the image file of every record to exist",
    UNDECODABLE_IMAGE: "Expected every image to decode (JPEG, PNG, GIF or BMP)",
    UNKNOWN_CLASS: "Expected every object's class to be in the label map",
    BAD_ANNOTATION: "Expected a readable annotation with image size and boxes",
    DUPLICATE_ID: "Expected every id to appear once (records are never merged)",
}


# Names data sets give one split: a recipe's "validation" finds a folder
# named "val" (VOC, ImageNet folders) or "valid", and COCO's year-stamped
# "val2017" too.
SPLIT_ALIASES = (
    ("train", "training"),
    ("validation", "val", "valid"),
    ("test", "testing"),
)


def resolve_split(split: str, available, where: str) -> str | None:
    """The name among `available` that `split` stands for, or None.

    `split` itself when present; else its one alias in `SPLIT_ALIASES`,
    optionally followed by a 4-digit year (COCO's `val2017`). Logs the
    choice, so that "validation" read from `val/` is never a surprise.
    """
    available = list(available)
    if split in available:
        return split
    names = next((group for group in SPLIT_ALIASES if split in group), (split,))
    pattern = re.compile(rf"({'|'.join(map(re.escape, names))})(\d{{4}})?")
    found = [name for name in available if pattern.fullmatch(name)]
    if len(found) != 1:
        return None
    logger.info("Split %r of %s: reading %r", split, where, found[0])
    return found[0]


@dataclasses.dataclass(frozen=True)
class LabeledData:
    """A split of a data set in canonical form.

    Attributes:
        dataset: unbatched `tf.data.Dataset` of canonical elements (see the
            `readers` module docstring).
        class_names: the names of labels `0..C-1`, in order.
        num_examples: number of elements, or `None` when the source does not
            say (a mocked or sliced tfds split).
        skipped: records skipped under `on_bad="skip"`.
    """

    dataset: tf.data.Dataset
    class_names: tuple[str, ...]
    num_examples: int | None
    skipped: int = 0


@dataclasses.dataclass
class Record:
    """One image of a local detection split, boxes still in source format."""

    image_id: str
    path: str
    height: float
    width: float
    boxes: list  # [N][4] source format
    labels: list  # [N] label indices


class BadRecords:
    """Raises on a bad record (`on_bad="error"`) or counts it (`"skip"`)."""

    def __init__(self, on_bad, where):
        self.on_bad = on_bad
        self.where = where
        self.counts = collections.Counter()

    def report(self, reason, record, file, **details):
        if self.on_bad == "error":
            received = "".join(f", {k}={v!r}" for k, v in details.items())
            raise InvalidValueError(
                f"{_EXPECTED[reason]} (in {self.where}); pass on_bad='skip' to "
                f"skip bad records. Received: record={record!r}, "
                f"file={file!r}{received}"
            )
        self.counts[reason] += 1

    def log(self, total):
        if self.counts:
            reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.counts.items()))
            logger.warning(
                "Skipped %d of %d records in %s: %s.",
                sum(self.counts.values()),
                total,
                self.where,
                reasons,
            )
