"""Models made from a built OverFeat, sharing or copying its weights: the
fine-stride twin (`dense`), the feature extractor, a box regressor or a
background class added (`with_regressor`, `with_background`), and
normalization folded into the convolutions for inference and export."""

from __future__ import annotations

import keras
import numpy as np

from overfeat_tf.architectures import (
    Stride,
    check_stride,
)
from overfeat_tf.errors import InvalidTypeError, InvalidValueError
from overfeat_tf.layers import (
    DilatedShare,
    norm_name,
    unwrap,
)
from overfeat_tf.models import BACKGROUND, OverFeat
from overfeat_tf.saving import load_model


def _config(model: OverFeat) -> dict:
    config = model.get_config()
    del config["trainable"]
    return config


def dense(model: OverFeat, stride: Stride = "fine") -> OverFeat:
    """A twin of `model` computing its class map at `stride`, same weights.

    `stride="fine"` is the paper's offset max pooling (section 3.3) in one
    pass: the last pooling runs with stride 1 and the first fully connected
    convolution is dilated by the pooling size, so output cell q is offset
    q mod k at position q div k, already interleaved (k = last pool size;
    fine stride 12 px accurate, 16 px fast). `stride="coarse"` rewires the
    model as it was trained. The twin reuses the model's layer objects: a
    weight trained or loaded into either is the other's too.

    Args:
        model: an `OverFeat` (from `overfeat_fast`, `overfeat_accurate`, or
            loaded from a `.keras` file).
        stride: `"fine"` (default) or `"coarse"`.

    Returns:
        An `OverFeat` with `model.stride == stride` and no weights of its own.

    Example:
    >>> model = overfeat_tf.overfeat_accurate(num_classes=10, width=0.125)
    >>> fine = overfeat_tf.dense(model, "fine")
    >>> fine(np.zeros((1, 245, 245, 3), "float32"))["class_logits"].shape
    TensorShape([1, 3, 3, 10])
    """
    if not isinstance(model, OverFeat):
        raise InvalidTypeError(
            "dense() takes an OverFeat model (from overfeat_fast or "
            f"overfeat_accurate). Received: model of type {type(model).__name__}"
        )
    config = _config(model)
    config.update(stride=check_stride(stride), name=f"{model.name}_{stride}")
    return OverFeat(shared_with=model, **config)


def feature_extractor(model: OverFeat) -> keras.Model:
    """Layers 1 to the last pooling of `model`, as a model sharing its weights.

    This is the paper's "OverFeat as a feature extractor" (section 1): the
    pooled features [B, h, w, maps] of any image at least a window wide; for
    a fine-stride twin, pooled at stride 1 (every offset).
    """
    if not isinstance(model, OverFeat):
        raise InvalidTypeError(
            "feature_extractor() takes an OverFeat model. "
            f"Received: model of type {type(model).__name__}"
        )
    features = model.activation(model.spec.last_pool_name)
    return keras.Model(model.input, features, name=f"{model.name}_features")


def with_regressor(
    model: OverFeat, regressor: str = "single", *, weights: str | None = None
) -> OverFeat:
    """`model` with a box regressor head on its pooled features (section 4.3).

    The new model shares every layer, and so every weight, of `model`; the
    regressor layers are new (trained with the feature extractor frozen),
    or copied from `weights`, a saved model (`.keras`) whose regressor was
    trained on this very feature extractor.

    Raises:
        ValueError: `model` has a regressor already; or `weights` has no
            regressor, another kind, other shapes, or was trained on
            different feature-extractor weights (its regressor reads
            features that this model does not compute).
    """
    if not isinstance(model, OverFeat):
        raise InvalidTypeError(
            "with_regressor() takes an OverFeat model. "
            f"Received: model of type {type(model).__name__}"
        )
    if model.regressor is not None:
        raise InvalidValueError(
            f"{model.name} has a {model.regressor!r} regressor already; "
            "pass the classifier alone."
        )
    config = _config(model)
    config.update(regressor=regressor, name=f"{model.name}_localizer")
    localizer = OverFeat(shared_with=model, **config)
    if weights is not None:
        _copy_regressor(load_model(weights), localizer, str(weights))
    return localizer


def with_background(model: OverFeat, *, dropout: float | None = None) -> OverFeat:
    """A detector to train from a classifier (section 4.4): the same network
    with one more class, `"background"` (the last), and a box regressor.

    Every layer of `model` is copied (not shared: the class layer grows);
    the background row of the class layer starts at zero, so the detector
    starts out scoring the classes as `model` does. A regressor of `model`
    is copied too; otherwise a single-class one is added. `dropout` sets
    the detector's dropout rate (default: the classifier's).
    """
    if not isinstance(model, OverFeat):
        raise InvalidTypeError(
            "with_background() takes an OverFeat model. "
            f"Received: model of type {type(model).__name__}"
        )
    config = _config(model)
    config.update(
        num_classes=model.num_classes + 1,
        class_names=(*model.class_names, BACKGROUND),
        regressor=model.regressor or "single",
        name=f"{model.name}_detector",
    )
    if dropout is not None:
        config.update(dropout=dropout)
    detector = OverFeat(**config)
    detector.build((None, None, None, 3))
    for layer in detector.layers:
        source = unwrap(layer)
        if not source.weights or isinstance(layer, DilatedShare):
            continue
        try:
            weights = model.get_layer(source.name).get_weights()
        except ValueError:
            continue  # a new regressor
        if source.name == model.spec.fc_names[-1]:
            kernel, bias = weights
            weights = [
                np.concatenate([kernel, np.zeros_like(kernel[..., :1])], -1),
                np.concatenate([bias, [0.0]]).astype(bias.dtype),
            ]
        source.set_weights(weights)
    return detector


def _copy_regressor(source: OverFeat, target: OverFeat, path: str) -> None:
    """Copies `source`'s regressor into `target` if it reads the same features."""
    if not isinstance(source, OverFeat) or source.regressor != target.regressor:
        kind = getattr(source, "regressor", None)
        raise InvalidValueError(
            f"{path} holds no {target.regressor!r} box regressor (it has "
            f"regressor={kind!r}); train one with `overfeat train --task localize`."
        )
    features = _with_norms(target, target.spec.conv_names)
    regressor = _with_norms(target, target.spec.regressor_names)
    for name in (*features, *regressor):
        mine = target.get_layer(name).get_weights()
        theirs = unwrap(source.get_layer(name)).get_weights()
        shapes = [w.shape for w in mine], [w.shape for w in theirs]
        if shapes[0] != shapes[1]:
            raise InvalidValueError(
                f"The regressor in {path} does not fit this backbone: layer "
                f"{name} has weight shapes {shapes[1]} there and {shapes[0]} "
                "here (another network, width or number of classes)."
            )
        if name in features and not all(
            np.array_equal(a, b) for a, b in zip(mine, theirs)
        ):
            raise InvalidValueError(
                f"The regressor in {path} was trained on other feature-extractor "
                f"weights (layer {name} differs): it would read features this "
                "model does not compute. Train a regressor on this classifier."
            )
    for name in regressor:
        target.get_layer(name).set_weights(source.get_layer(name).get_weights())


def _with_norms(model: OverFeat, names) -> list[str]:
    """`names`, then the normalization layers of those that have one (an
    output layer has none)."""
    present = {layer.name for layer in model.layers}
    return [*names, *(norm_name(n) for n in names if norm_name(n) in present)]


def regressor_layer_names(model: OverFeat) -> list[str]:
    """The names of the box regressor's weighted layers (the ones localization
    trains on the frozen feature extractor), normalization layers included."""
    return _with_norms(model, model.spec.regressor_names) if model.regressor else []


def fold_normalization(model: OverFeat) -> OverFeat:
    """`model` without normalization layers, each folded into its convolution.

    At inference a batch-norm layer is `gamma * (x - mean) / sqrt(var + eps)
    + beta` per channel, so the convolution before it can absorb it: kernel
    times `s = gamma / sqrt(var + eps)` per output channel, bias `beta -
    mean * s`. The result is the paper's network (`normalization=None`),
    the same outputs at inference with fewer ops; exporters run it. A model
    without normalization is returned as it is.

    Returns:
        A new `OverFeat` with its own weights (not shared with `model`).
    """
    if not isinstance(model, OverFeat):
        raise InvalidTypeError(
            "fold_normalization() takes an OverFeat model. "
            f"Received: model of type {type(model).__name__}"
        )
    if model.normalization is None:
        return model
    config = _config(model)
    config.update(normalization=None)
    folded = OverFeat(**config)
    folded.build((None, None, None, 3))
    sources = {unwrap(layer).name: unwrap(layer) for layer in model.layers}
    for layer in folded.layers:
        layer = unwrap(layer)
        if not layer.weights:
            continue
        weights = sources[layer.name].get_weights()
        norm = sources.get(norm_name(layer.name))
        if norm is not None:
            gamma, beta, mean, variance = (
                np.asarray(w, np.float64) for w in norm.get_weights()
            )
            scale = gamma / np.sqrt(variance + norm.epsilon)
            weights = [weights[0] * scale, beta - mean * scale]
        layer.set_weights([np.asarray(w, np.float32) for w in weights])
    return folded
