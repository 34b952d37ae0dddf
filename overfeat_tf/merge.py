"""The greedy merge of regressed boxes (section 4.3), as TensorFlow ops.

Match score. The paper merges the pair with the lowest match score, "the
sum of the distance between centers and the intersection area"; read
literally, more overlap would score higher and the closest pairs would not
merge first. We use the reading in which closer, more overlapping boxes
score lower: the DIoU distance (Zheng et al., AAAI 2020),
`1 - IoU + |center_a - center_b|^2 / diagonal^2`, with `diagonal` that of
the smallest box enclosing both. It lies in [0, 2), is 0 for identical
boxes, does not depend on the image scale, and is bitwise symmetric. Two
zero-area boxes have no area to compare: their IoU counts as 1, so the
center term alone decides (0 for the same point).

Merge, made exact: only boxes of one class merge. Each step takes the
same-class pair (i, j), i != j, of lowest score, ties broken by the first
pair in row-major order of the N x N matrix (lowest i, then lowest j, so
i < j); it stops when that score exceeds the threshold. Box i becomes the
mean of the coordinates of all input boxes merged into it (coordinate sums
over counts, float32), its score the sum of their scores, and j leaves.
Output: the remaining boxes by score, descending, ties by index.

Speed. Each row keeps its minimum and first argmin; the global pair is the
first argmin of the row minima. After a merge, row i is computed anew (it
is also column i, by symmetry), and so are the rows whose minimum was at i
or j (about two per merge on localizer output); every other row compares
its minimum with column i. That is O(N) per merge, O(N^2) in all, where
rebuilding the matrix each merge is O(N^3). The loop runs under XLA by
default (about 10x faster than graph mode on CPU, `benchmarks/merge.py`),
on N padded to a size bucket so that few shapes compile.
"""

from __future__ import annotations

import tensorflow as tf

from overfeat_tf.boxes import area
from overfeat_tf.errors import InvalidValueError

# The initial row minima are computed this many rows at a time.
_BLOCK = 64
# Rows redone in one batch with each merged box's row; more, one at a time.
_BATCH = 2


def match_score(boxes_a, boxes_b):
    """DIoU distance between boxes `[..., 4]` xyxy (x1 <= x2), broadcast.

    Returns:
        float32 `[...]` in [0, 2): 0 for identical boxes, lower for closer
        and more overlapping ones; `match_score(a, b) == match_score(b, a)`
        bit for bit.
    """
    ax1, ay1, ax2, ay2 = tf.unstack(tf.cast(boxes_a, tf.float32), axis=-1)
    bx1, by1, bx2, by2 = tf.unstack(tf.cast(boxes_b, tf.float32), axis=-1)
    # Only min, max and commutative sums, so swapping a and b is exact.
    inter = tf.maximum(tf.minimum(ax2, bx2) - tf.maximum(ax1, bx1), 0.0) * tf.maximum(
        tf.minimum(ay2, by2) - tf.maximum(ay1, by1), 0.0
    )
    union = (area(boxes_a) + area(boxes_b)) - inter
    iou = tf.where(union > 0.0, tf.math.divide_no_nan(inter, union), 1.0)
    # Twice the center offsets, so four times the squared diagonal.
    dx = (ax1 + ax2) - (bx1 + bx2)
    dy = (ay1 + ay2) - (by1 + by2)
    enclose_w = tf.maximum(ax2, bx2) - tf.minimum(ax1, bx1)
    enclose_h = tf.maximum(ay2, by2) - tf.minimum(ay1, by1)
    diagonal = 4.0 * (enclose_w * enclose_w + enclose_h * enclose_h)
    return (1.0 - iou) + tf.math.divide_no_nan(dx * dx + dy * dy, diagonal)


def greedy_merge(boxes, scores, classes, threshold, *, jit_compile: bool = True):
    """Greedily merge same-class boxes whose match score is <= `threshold`.

    The paper's steps (d)-(g) with the rules of the module docstring. Runs
    in any graph and takes any number of boxes, including none.

    Args:
        boxes: float `[N, 4]` xyxy pixels, x1 <= x2, y1 <= y2, finite.
        scores: float `[N]` class scores of the boxes.
        classes: int `[N]` class of each box.
        threshold: scalar; pairs scoring above it never merge (< 0: no
            merge; >= 2: each class merges into one box).
        jit_compile: run the loop under XLA (default True, much faster on
            CPU); False for exporters that cannot carry XLA.

    Returns:
        A dict: `boxes` float32 `[M, 4]` (means of the merged inputs),
        `scores` float32 `[M]` (sums), `classes` int32 `[M]` and `counts`
        int32 `[M]` (inputs per box), by score, descending.

    Raises:
        ValueError: if the static shapes are not `[N, 4]`, `[N]`, `[N]`
            and a scalar threshold.

    Example:

    >>> merged = greedy_merge([[0, 0, 10, 10], [1, 0, 11, 10]], [0.5, 0.25],
    ...                       [3, 3], threshold=0.6)
    >>> merged["boxes"].numpy(), merged["counts"].numpy()
    (array([[ 0.5,  0. , 10.5, 10. ]], dtype=float32), array([2], dtype=int32))
    """
    boxes = tf.cast(boxes, tf.float32)
    scores = tf.cast(scores, tf.float32)
    classes = tf.cast(classes, tf.int32)
    threshold = tf.cast(threshold, tf.float32)
    _check_shapes(boxes, scores, classes, threshold)
    boxes = tf.debugging.assert_all_finite(boxes, "greedy_merge: boxes must be finite")

    # Boxes of different classes never merge: each class runs alone, which
    # makes the O(N^2) work the sum of the squared class sizes.
    loop = _merge_xla if jit_compile else _merge_graph
    # Slot 0 holds empty rows, so that no boxes still concatenates.
    merged = tuple(
        tf.TensorArray(dtype, 1, dynamic_size=True, infer_shape=False).write(
            0, tf.zeros(shape, dtype)
        )
        for dtype, shape in (
            (tf.int32, [0]),
            (tf.float32, [0, 4]),
            (tf.float32, [0]),
            (tf.int32, [0]),
        )
    )
    labels = tf.unique(classes).y

    def merge_class(k, arrays):
        rows = tf.cast(tf.where(tf.equal(classes, labels[k]))[:, 0], tf.int32)
        kept, sums, totals, counts = _merge_padded(
            loop,
            tf.gather(boxes, rows),
            tf.gather(scores, rows),
            tf.gather(classes, rows),
            threshold,
        )
        values = (tf.gather(rows, kept), sums, totals, counts)
        return k + 1, tuple(a.write(k + 1, v) for a, v in zip(arrays, values))

    _, merged = tf.while_loop(
        lambda k, _: k < tf.size(labels), merge_class, (tf.constant(0), merged)
    )
    first, sums, totals, counts = (
        tf.reshape(a.concat(), shape)
        for a, shape in zip(merged, ([-1], [-1, 4], [-1], [-1]))
    )
    # A merged box sits at the lowest index of its inputs: order by score,
    # descending, ties by that index, as one merge over all classes would.
    order = tf.argsort(first, stable=True)
    order = tf.gather(order, tf.argsort(-tf.gather(totals, order), stable=True))
    counts = tf.gather(counts, order)
    return {
        "boxes": tf.gather(sums, order) / tf.cast(counts, tf.float32)[:, None],
        "scores": tf.gather(totals, order),
        "classes": tf.gather(classes, tf.gather(first, order)),
        "counts": counts,
    }


def greedy_merge_fixed(
    boxes, scores, classes, valid, threshold, *, jit_compile: bool = False
):
    """`greedy_merge` in buffers of fixed size N, for graphs that need
    static shapes (the TFLite pipeline, where loops may not grow arrays).

    All classes merge in one loop (pairs of different classes never
    match), over the boxes that `valid` marks; the result equals
    `greedy_merge` of those boxes, in rows 0 to `count` - 1. The cost is
    O(N^2) for N boxes of every class, against the sum of the squared class
    sizes for `greedy_merge`: keep N small.

    Args:
        boxes, scores, classes, threshold: as for `greedy_merge`.
        valid: bool `[N]`, the boxes that take part.
        jit_compile: run the loop under XLA (default False: TFLite needs
            the loop in plain ops).

    Returns:
        `greedy_merge`'s dict with N rounded up past a multiple of 64 rows
        (from row `count` on, padding: class -1, zero box, score and count)
        and `count`, the number of merged boxes.
    """
    boxes = tf.cast(boxes, tf.float32)
    scores = tf.cast(scores, tf.float32)
    classes = tf.cast(classes, tf.int32)
    threshold = tf.cast(threshold, tf.float32)
    _check_shapes(boxes, scores, classes, threshold)
    n = boxes.shape[0] or tf.shape(boxes)[0]
    padding = _BLOCK - n % _BLOCK  # the loop takes _BLOCK rows at a time
    padded = [
        tf.pad(x, [[0, padding]] + [[0, 0]] * (x.shape.rank - 1))
        for x in (boxes, scores, classes, tf.cast(valid, tf.bool))
    ]
    loop = _merge_xla if jit_compile else _merge_loop
    sums, counts, totals, active = loop(*padded, threshold)
    # Survivors by score, descending, ties by index (top_k keeps the lower
    # index first on ties); the rest after them.
    key = tf.where(active, totals, float("-inf"))
    order = tf.math.top_k(key, tf.size(key)).indices
    active = tf.gather(active, order)
    counts = tf.where(active, tf.gather(counts, order), 0)
    sums = tf.gather(sums, order)
    return {
        "boxes": tf.where(
            active[:, None],
            sums / tf.cast(tf.maximum(counts, 1), tf.float32)[:, None],
            0.0,
        ),
        "scores": tf.where(active, tf.gather(totals, order), 0.0),
        "classes": tf.where(active, tf.gather(padded[2], order), -1),
        "counts": counts,
        "count": tf.reduce_sum(tf.cast(active, tf.int32)),
    }


def _merge_padded(loop, boxes, scores, classes, threshold):
    """One class's merge, padded to a size bucket (XLA compiles per shape).

    Returns the survivors' indices, coordinate sums, scores and counts.
    """
    n = tf.shape(boxes)[0]
    padding = _bucket(n) - n
    valid = tf.pad(tf.ones([n], tf.bool), [[0, padding]])
    sums, counts, totals, active = loop(
        tf.pad(boxes, [[0, padding], [0, 0]]),
        tf.pad(scores, [[0, padding]]),
        tf.pad(classes, [[0, padding]]),
        valid,
        threshold,
    )
    kept = tf.cast(tf.where(active)[:, 0], tf.int32)
    return (
        kept,
        tf.gather(sums, kept),
        tf.gather(totals, kept),
        tf.gather(counts, kept),
    )


def _check_shapes(boxes, scores, classes, threshold):
    """Raise a ValueError for static shapes other than [N, 4], [N], [N], []."""
    expected = (
        (boxes, [None, 4]),
        (scores, [None]),
        (classes, [None]),
        (threshold, []),
    )
    if not all(t.shape.is_compatible_with(shape) for t, shape in expected):
        raise InvalidValueError(
            "`boxes`, `scores`, `classes` and `threshold` must be [N, 4] "
            "(x1, y1, x2, y2), [N], [N] and a scalar. Received: "
            f"boxes.shape={boxes.shape}, scores.shape={scores.shape}, "
            f"classes.shape={classes.shape}, threshold.shape={threshold.shape}"
        )
    lengths = {t.shape[0] for t in (boxes, scores, classes) if t.shape.rank}
    if len(lengths - {None}) > 1:
        raise InvalidValueError(
            "`boxes`, `scores` and `classes` must have one length N. Received: "
            f"{boxes.shape}, {scores.shape}, {classes.shape}"
        )


def _bucket(n):
    """`n` rounded up to a multiple of max(2^k / 8, 64), 2^k >= n.

    Four buckets per octave: at most 25 % padding, a handful of XLA shapes.
    """
    octave = tf.reduce_sum(tf.cast(n > 2 ** tf.range(31), tf.int32))
    step = tf.maximum(2**octave // 8, _BLOCK)
    return tf.maximum((n + step - 1) // step * step, _BLOCK)


def _first_min(values):
    """Minimum over the last axis and the first index that attains it.

    Explicit, as `tf.argmin` leaves ties unspecified.
    """
    minimum = tf.reduce_min(values, axis=-1)
    size = tf.shape(values)[-1]
    first = tf.where(values == minimum[..., None], tf.range(size), size)
    return minimum, tf.reduce_min(first, axis=-1)


def _masked_scores(rows, boxes, classes, active):
    """Scores `[..., N]` of boxes number `rows` `[...]` against all boxes.

    Inactive boxes, other classes and the box itself score +inf, so that
    they never win a minimum.
    """
    index = tf.range(tf.shape(boxes)[0])
    rows = tf.convert_to_tensor(rows)
    scores = match_score(tf.gather(boxes, rows)[..., None, :], boxes)
    same = tf.equal(tf.gather(classes, rows)[..., None], classes)
    allowed = active & same & (index != rows[..., None])
    return tf.where(allowed, scores, float("inf"))


def _merge_loop(boxes, scores, classes, valid, threshold):
    """The merge on padded inputs; returns sums, counts, totals, active."""
    n = tf.shape(boxes)[0]
    index = tf.range(n)
    inf = tf.constant(float("inf"))

    # Every row's minimum and first argmin, _BLOCK rows at a time.
    def block_minima(start):
        rows = start + tf.range(_BLOCK)
        return _first_min(_masked_scores(rows, boxes, classes, valid))

    row_min, row_arg = tf.map_fn(
        block_minima,
        tf.range(0, n, _BLOCK),
        fn_output_signature=(tf.float32, tf.int32),
    )

    def merge_best(s):
        """Merge the best pair if it scores <= threshold; queue new rows.

        Box i takes box j's sums, count and score, and j leaves. Row i
        (which by symmetry is also column i) and the first _BATCH rows whose
        minimum was at i or j are computed here and taken in by `take_in`.
        """
        s = dict(s)
        best, i = _first_min(s["row_min"])
        j = tf.gather(s["row_arg"], i)
        s["merged"] = (best <= threshold) & (best < inf)
        at_i = (index == i) & s["merged"]
        total = tf.gather(s["sums"], i) + tf.gather(s["sums"], j)
        count = tf.gather(s["counts"], i) + tf.gather(s["counts"], j)
        score = tf.gather(s["totals"], i) + tf.gather(s["totals"], j)
        s["sums"] = tf.where(at_i[:, None], total, s["sums"])
        s["counts"] = tf.where(at_i, count, s["counts"])
        s["totals"] = tf.where(at_i, score, s["totals"])
        s["active"] &= ~((index == j) & s["merged"])
        mean = total / tf.cast(count, tf.float32)
        s["boxes"] = tf.where(at_i[:, None], mean, s["boxes"])

        redo = (s["row_arg"] == i) | (s["row_arg"] == j)
        s["redo"] = redo & s["active"] & (s["row_min"] < inf) & (index != i)
        listed = [tf.reduce_min(tf.where(s["redo"], index, n))]
        for _ in range(_BATCH - 1):
            later = s["redo"] & (index > listed[-1])
            listed.append(tf.reduce_min(tf.where(later, index, n)))
        s["last"] = listed[-1]  # n if fewer
        s["rows"] = tf.stack([i] + [tf.where(k < n, k, i) for k in listed])
        s["removed"] = j
        # The scores go to a loop variable, for the next step: XLA then
        # writes them in place on one thread. Used at once, they would be a
        # kernel that XLA splits across threads, and each split waits for a
        # free core: 1.3x slower on an idle 2-core CPU, 2x on a busy one.
        s["slot"] = 1 - s["slot"]
        s["queued"] = tf.tensor_scatter_nd_update(
            s["queued"],
            s["slot"][None, None],
            _masked_scores(s["rows"], s["boxes"], classes, s["active"])[None],
        )
        return s

    def take_in(s):
        """Update the row minima with the rows queued by `merge_best`."""
        s = dict(s)
        queued = s["queued"][s["slot"]]  # [1 + _BATCH, N]
        i, j = s["rows"][0], s["removed"]
        row_min, row_arg = s["row_min"], s["row_arg"]
        # Other rows take i on a lower score, or an equal one at a lower
        # index; j leaves; queued rows are exact (a repeated i is harmless).
        column = queued[0]
        better = (column < row_min) | ((column == row_min) & (i < row_arg))
        row_min = tf.where(better, column, tf.where(index == j, inf, row_min))
        row_arg = tf.where(better, i, row_arg)
        mins, args = _first_min(queued)
        # Row by row, not tensor_scatter_nd_update: TFLite lowers that to
        # scatter-adds, which sum the repeated i instead of keeping one.
        for k in range(1 + _BATCH):
            at_k = index == s["rows"][k]
            row_min = tf.where(at_k, mins[k], row_min)
            row_arg = tf.where(at_k, args[k], row_arg)

        # Rows to redo beyond the first _BATCH, if any, one at a time.
        left = s["redo"] & (index > s["last"])

        def redo_row(k, row_min, row_arg):
            k_min, k_arg = _first_min(
                _masked_scores(k, s["boxes"], classes, s["active"])
            )
            row_min = tf.where(index == k, k_min, row_min)
            row_arg = tf.where(index == k, k_arg, row_arg)
            next_k = tf.reduce_min(tf.where(left & (index > k), index, n))
            return next_k, row_min, row_arg

        first = tf.reduce_min(tf.where(left, index, n))
        _, s["row_min"], s["row_arg"] = tf.while_loop(
            lambda k, *_: k < n, redo_row, (first, row_min, row_arg)
        )
        return s

    state = {
        "boxes": boxes,
        "sums": boxes,
        "counts": tf.ones([n], tf.int32),
        "totals": scores,
        "active": valid,
        "row_min": tf.where(valid, tf.reshape(row_min, [-1]), inf),  # [N]
        "row_arg": tf.reshape(row_arg, [-1]),
        "slot": tf.constant(0),
        "queued": tf.zeros([2, 1 + _BATCH, n]),
    }
    state = tf.while_loop(
        lambda s: s["merged"],
        lambda s: [merge_best(take_in(s))],
        [merge_best(state)],
    )[0]
    return state["sums"], state["counts"], state["totals"], state["active"]


_SIGNATURE = [
    tf.TensorSpec([None, 4], tf.float32, name="boxes"),
    tf.TensorSpec([None], tf.float32, name="scores"),
    tf.TensorSpec([None], tf.int32, name="classes"),
    tf.TensorSpec([None], tf.bool, name="valid"),
    tf.TensorSpec([], tf.float32, name="threshold"),
]
_merge_xla = tf.function(_merge_loop, input_signature=_SIGNATURE, jit_compile=True)
_merge_graph = tf.function(_merge_loop, input_signature=_SIGNATURE)
