"""Test set-up: tiny models with the paper's geometry, sharpened or with
random boxes, random images, and which feature cells a crop's zero padding
can reach. The oracles are in `reference.py`."""

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


def with_random_boxes(model, rng, scale=0.05):
    """Random weights in the zero-initialized output layer: varied boxes."""
    layer = model.get_layer(model.spec.regressor_names[-1])
    layer.set_weights([scale * rng.normal(size=w.shape) for w in layer.get_weights()])
    return model
