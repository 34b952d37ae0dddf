"""Independent NumPy references for the tests: pooling, the classifier as
matrix products, and which feature cells a crop's zero padding can reach."""

import math

import keras
import numpy as np

import overfeat_tf as of

TINY = 0.125  # width of the test models: 1/8 of the maps, the paper's geometry


def sharpened(model, seed=3):
    """`model` with its last class and box layers scaled up: random weights
    give near-uniform probabilities, which would hide quantization errors."""
    rng = np.random.default_rng(seed)
    names = [model.spec.fc_names[-1]] + list(model.spec.regressor_names[-1:])
    for name in names if model.regressor else names[:1]:
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * 8 + 0.01 * rng.normal(size=kernel.shape), bias])
    return model


def normalized(builder, *args, seed=5, **kwargs):
    """A model of `builder` with batch normalization whose statistics and
    affine terms are random (fresh ones are the identity, which would hide a
    normalization layer skipped or misplaced)."""
    model = builder(*args, normalization="batch", **kwargs)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 2.0, shape),  # gamma
                    rng.normal(0.0, 0.5, shape),  # beta
                    rng.normal(0.0, 0.5, shape),  # moving mean
                    rng.uniform(0.5, 2.0, shape),  # moving variance
                ]
            )
    return model


def make_images(rng, batch, height, width):
    return rng.normal(size=(batch, height, width, 3)).astype(np.float32)


def layer_output(model, name, images):
    """The activation of one layer of `model`, as float64 NumPy."""
    probe = keras.Model(model.input, model.activation(name))
    return np.asarray(probe(images), np.float64)


def max_pool(x, k, offset=(0, 0)):
    """Non-overlapping k x k max pooling of [h, w, c] from (dy, dx)."""
    x = x[offset[0] :, offset[1] :]
    h, w = x.shape[0] // k, x.shape[1] // k
    return x[: h * k, : w * k].reshape(h, k, w, k, -1).max(axis=(1, 3))


def fc_weights(model):
    """The classifier's (kernel, bias) pairs as float64, first layer first."""
    return [
        [np.asarray(v, np.float64) for v in model.get_layer(name).get_weights()]
        for name in model.spec.fc_names
    ]


def classify_cell(features, top, left, weights, dilation=1):
    """The classifier as plain matrix products on one cell's crop.

    `features` [h, w, c] are pooled features; the cell reads K x K of them
    from (top, left), every `dilation`-th one.
    """
    (kernel, bias), *rest = weights
    k = kernel.shape[0]
    rows = top + dilation * np.arange(k)
    cols = left + dilation * np.arange(k)
    crop = features[np.ix_(rows, cols)]  # [K, K, c]
    x = crop.reshape(-1) @ kernel.reshape(-1, kernel.shape[-1]) + bias
    for kernel, bias in rest:
        x = np.maximum(x, 0) @ kernel.reshape(-1, kernel.shape[-1]) + bias
    return x


def classify_map(features, weights, dilation=1):
    """`classify_cell` at every position of a pooled feature map."""
    k = weights[0][0].shape[0]
    extent = dilation * (k - 1) + 1
    h, w = features.shape[0] - extent + 1, features.shape[1] - extent + 1
    return np.array(
        [
            [classify_cell(features, i, j, weights, dilation) for j in range(w)]
            for i in range(h)
        ]
    )


def padding_border(spec):
    """Pooled-feature cells at each edge of a window that zero padding reaches.

    Walks the feature rows: a padded convolution widens the border by its
    padding, a stride or pooling of k divides it by k (rounding up).
    """
    border = 0
    for row in spec.features:
        border = math.ceil(border / row.stride) + row.padding
        border = math.ceil(border / row.pool)
    return border


def spec_without_padding(spec):
    """The same table with every zero padding removed (a larger window)."""
    features = tuple(
        of.ConvLayer(r.filters, r.kernel, r.stride, 0, r.pool) for r in spec.features
    )
    return of.OverFeatSpec(spec.name + "_nopad", features, spec.classifier)
