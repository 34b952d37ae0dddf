"""Dense evaluation is sliding-window evaluation with shared computation.

All with random weights at width 1/8 (the paper's geometry), for both
networks and input sizes that are not the window size.
"""

import numpy as np
import pytest
from helpers import TINY, make_images, normalized, padding_border, spec_without_padding
from reference import classify_cell, fc_weights, layer_output, max_pool

import overfeat_tf as of

BUILDERS = [of.overfeat_fast, of.overfeat_accurate]
SIZES = [(262, 300), (300, 341)]  # neither is the window; not square
NORMALIZATIONS = [None, "batch"]


def build(builder, normalization, *args, **kwargs):
    """The paper's network, or one with batch normalization of random
    statistics (at inference each norm is a per-channel affine map, so every
    equivalence here must hold for it too)."""
    if normalization is None:
        return builder(*args, **kwargs)
    return normalized(builder, *args, **kwargs)


def relative_error(got, expected):
    return np.abs(got - expected).max() / np.abs(expected).max()


def logits(model, images):
    return np.asarray(model(images)["class_logits"], np.float64)


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("stride", ["coarse", "fine"])
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_each_cell_is_the_classifier_on_its_crop(
    builder, size, stride, normalization, rng
):
    # (a) Each cell equals the fully connected layers as plain matrix
    # products on that cell's crop of the dense pooled feature map (with
    # normalization, the products of the folded weights).
    model = of.dense(build(builder, normalization, 5, width=TINY), stride)
    images = make_images(rng, 1, *size)
    features = np.asarray(of.feature_extractor(model)(images), np.float64)[0]
    dense = logits(model, images)[0]
    dilation = model.spec.features[-1].pool if stride == "fine" else 1
    weights = fc_weights(of.fold_normalization(model))
    assert dense.shape[:2] == model.geometry.output_shape(*size, stride)
    for i in range(dense.shape[0]):
        for j in range(dense.shape[1]):
            cell = classify_cell(features, i, j, weights, dilation)
            assert relative_error(dense[i, j], cell) < 1e-4


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_fine_map_is_the_papers_offset_pooling(builder, size, normalization, rng):
    # Section 3.3: pool at each offset (dy, dx), run the classifier on each
    # pooled map, interleave. Computed here from the last conv's output.
    model = build(builder, normalization, 5, width=TINY)
    spec, k = model.spec, model.spec.features[-1].pool
    images = make_images(rng, 1, *size)
    pre_pool = layer_output(model, spec.conv_names[-1], images)[0]
    weights = fc_weights(of.fold_normalization(model))
    fine = logits(of.dense(model, "fine"), images)[0]
    expected = np.full_like(fine, np.nan)
    for dy in range(k):
        for dx in range(k):
            pooled = max_pool(pre_pool, k, (dy, dx))
            extent = weights[0][0].shape[0]
            for i in range(pooled.shape[0] - extent + 1):
                for j in range(pooled.shape[1] - extent + 1):
                    cell = classify_cell(pooled, i, j, weights)
                    expected[k * i + dy, k * j + dx] = cell
    assert not np.isnan(expected).any()  # every fine cell has one offset
    assert relative_error(fine, expected) < 1e-4
    # The coarse map is offset (0, 0): every k-th fine cell.
    coarse = logits(model, images)[0]
    assert relative_error(coarse, fine[::k, ::k]) < 1e-4


@pytest.mark.parametrize("builder", BUILDERS)
def test_dense_features_equal_crop_features_in_the_interior(builder, rng):
    # (b) Layers 3-5 zero-pad, so a crop run alone differs from the dense
    # pass at its border; inside the border the padding cannot reach, the
    # pooled features are the same.
    model = builder(5, width=TINY)
    g = model.geometry
    extractor = of.feature_extractor(model)
    images = make_images(rng, 1, 330, 370)
    dense = np.asarray(extractor(images), np.float64)[0]
    b = padding_border(model.spec)
    h, w = g.output_shape(330, 370)
    assert b > 0
    for i, j in [(0, 0), (h - 1, w - 1), (h // 2, w - 1)]:
        y, x = i * g.coarse_stride, j * g.coarse_stride
        crop = images[:, y : y + g.window, x : x + g.window]
        alone = np.asarray(extractor(crop), np.float64)[0]
        n = alone.shape[0]
        inner = alone[b : n - b, b : n - b]
        assert inner.size > 0
        expected = dense[i + b : i + n - b, j + b : j + n - b]
        assert relative_error(inner, expected) < 1e-4
        # ...and the border does differ: the padding is real.
        assert relative_error(alone, dense[i : i + n, j : j + n]) > 1e-3


@pytest.mark.parametrize("spec", [of.FAST, of.ACCURATE])
@pytest.mark.parametrize("stride", ["coarse", "fine"])
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_unpadded_table_cells_equal_their_cropped_windows(
    spec, stride, normalization, rng
):
    # (c) Without inner padding, every cell is exactly the model run on
    # that cell's window (from the geometry), end to end.
    nopad = spec_without_padding(spec)
    model = of.dense(build(of.OverFeat, normalization, nopad, 4, width=TINY), stride)
    g = model.geometry
    assert g.window > spec.geometry.window  # the geometry follows the table
    height, width = g.window + 2 * g.coarse_stride + 5, g.window + g.coarse_stride + 9
    images = make_images(rng, 1, height, width)
    dense = logits(model, images)[0]
    windows = g.cell_windows(height, width, stride).astype(int)
    assert dense.shape[:2] == windows.shape[:2]
    for i in range(dense.shape[0]):
        for j in range(dense.shape[1]):
            x1, y1, x2, y2 = windows[i, j]
            crop = images[:, y1:y2, x1:x2]
            alone = logits(model, crop)[0]
            assert alone.shape[:2] == (1, 1)
            assert relative_error(dense[i, j], alone[0, 0]) < 1e-4
