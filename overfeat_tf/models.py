"""The OverFeat networks as fully convolutional Keras functional models.

Every fully connected layer is a convolution, so one model takes a training
window or a whole image and returns a class-score map. `dense` gives the
fine-stride twin that shares the weights; `feature_extractor` gives layers 1
to the last pooling. Only Keras layers and `keras.ops`: the models build and
run on the TensorFlow and JAX backends alike.
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from typing import Sequence

import keras
import numpy as np

from overfeat_tf.architectures import (
    ACCURATE,
    FAST,
    OverFeatSpec,
    Stride,
    check_stride,
    scaled,
)
from overfeat_tf.errors import InvalidTypeError, InvalidValueError, MissingFileError

INITIALIZERS = ("he_normal", "paper")
# A departure from the paper, by option: a normalization layer between each
# convolution and its ReLU. None is the paper's network.
NORMALIZATIONS = (None, "batch")
# The box regressor (section 4.3): one box per cell for all classes (the
# paper's better "single-class regressor") or one per class.
REGRESSORS = (None, "single", "per_class")

# Sermanet et al. (2014), section 3.1: "weights initialized randomly with
# (mu, sigma) = (0, 1e-2)".
_PAPER_INITIALIZER = {
    "class_name": "RandomNormal",
    "config": {"mean": 0.0, "stddev": 0.01},
}


@keras.saving.register_keras_serializable(package="overfeat_tf")
class DilatedShare(keras.layers.Layer):
    """Runs another Conv2D's kernel and bias with a dilation: no new weights.

    The fine-stride twin uses it for the first fully connected layer, so the
    twin and the trained model hold one set of weights that cannot drift.
    """

    def __init__(self, conv: keras.layers.Conv2D, dilation: int, **kwargs):
        super().__init__(**kwargs)
        self.conv = conv
        self.dilation = dilation

    def build(self, input_shape):
        if not self.conv.built:
            self.conv.build(input_shape)

    def call(self, inputs):
        outputs = keras.ops.conv(
            inputs,
            self.conv.kernel,
            padding="valid",
            dilation_rate=self.dilation,
        )
        if self.conv.use_bias:
            outputs = outputs + self.conv.bias
        return self.conv.activation(outputs)

    def compute_output_spec(self, inputs):
        extent = self.dilation * (self.conv.kernel_size[0] - 1) + 1
        batch, h, w, _ = inputs.shape
        h = None if h is None else h - extent + 1
        w = None if w is None else w - extent + 1
        return keras.KerasTensor((batch, h, w, self.conv.filters), self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config["conv"] = keras.saving.serialize_keras_object(self.conv)
        config["dilation"] = self.dilation
        return config

    @classmethod
    def from_config(cls, config):
        config["conv"] = keras.saving.deserialize_keras_object(config["conv"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="overfeat_tf")
class OverFeat(keras.Model):
    """An OverFeat network: images [B, H, W, 3] -> {"class_logits": [B, h, w, C]}
    (and `"boxes"` with a regressor).

    Built from a layer table (`OverFeatSpec`) as a functional model of
    stock Keras layers named after the paper (`conv1`, `pool1`, ...,
    `fc6`, ...; `class_logits` is a float32 identity so the logits stay
    float32 under mixed precision). Prefer the builders `overfeat_fast` and
    `overfeat_accurate`.

    The default initializer is He-normal rather than the paper's N(0, 0.01):
    without normalization layers, N(0, 0.01) shrinks the signal at every
    layer (at width 1 the logits come out at 0.002-0.006 of the input's
    scale), and in `benchmarks/initialization.py` a width-1/8 accurate model
    from it stays at chance loss (1.39) after 60 SGD steps where He-normal
    reaches 0.03. He-normal keeps the activation scale through the ReLUs.
    `initializer="paper"` restores the paper's choice.

    Args:
        spec: the layer table, e.g. `architectures.FAST`.
        num_classes: size of the class layer (>= 1).
        width: factor on every layer's maps except the class layer (> 0);
            kernel sizes, strides and pools stay the table's, so the
            geometry (window, strides) does not change with width.
        initializer: `"he_normal"` (default) or `"paper"`, or any Keras
            initializer identifier, for every kernel; biases start at 0.
        class_initializer: the class layer's kernel initializer (default:
            `initializer`). `"zeros"` starts every class at the same score
            (initial loss log C): with He-normal the untrained logits have
            a standard deviation of ~5 and a cross-entropy of ~15, and a
            from-scratch run spends its first epoch shrinking them (on the
            built-in data, 4 epochs reach 67.7 % validation error with
            zeros, 78.0 % without). The training recipes use `"zeros"`,
            as big_vision's heads do.
        dropout: dropout rate after each hidden fully connected layer (the
            paper's 0.5 on its first two), active only in training.
        stride: `"coarse"` (default) or `"fine"`: the output stride of the
            dense pass. Use `dense(model, "fine")` to get a fine-stride twin
            of a trained model.
        shared_with: an `OverFeat` whose layers (and weights) this model
            reuses instead of making its own; how `dense` builds its twins.
        class_names: the label map, one name per class (optional); saved
            with the model, so inference and exports can name classes.
        regressor: None (default), `"single"` or `"per_class"`: add the box
            regressor head (section 4.3) on the pooled features, output
            `"boxes"` [B, h, w, 4] (one box per cell for every class, the
            paper's better choice) or [B, h, w, 4 * C] (class c's box in
            channels 4c..4c+3). Boxes are coded relative to each cell's
            window (`boxes.encode_windows`). Use `with_regressor` to add one
            to a trained classifier.
        normalization: None (default, the paper's network) or `"batch"`: a
            `BatchNormalization` layer (`conv1_bn`, ...) between every
            hidden convolution and its ReLU, the convolution then without
            bias. A departure from the paper that lets narrow networks
            train from scratch in minutes (SGD without it kills the ReLUs).
            At inference a batch-norm layer is a per-channel affine map, so
            dense and fine-stride passes stay exact; `fold_normalization`
            folds it into the convolutions for export.

    Raises:
        ValueError: for width <= 0, num_classes < 1, an unknown stride or
            initializer or normalization, `class_names` of another length
            than num_classes,
            and, when called, for images that are not
            [B, H, W, 3] of a float dtype with H and W >= the window.
    """

    def __init__(
        self,
        spec: OverFeatSpec,
        num_classes: int = 1000,
        *,
        width: float = 1.0,
        initializer="he_normal",
        class_initializer=None,
        dropout: float = 0.5,
        stride: Stride = "coarse",
        shared_with: OverFeat | None = None,
        class_names: Sequence[str] | None = None,
        regressor: str | None = None,
        normalization: str | None = None,
        **kwargs,
    ):
        if isinstance(spec, dict):
            spec = OverFeatSpec.from_dict(spec)
        _check_arguments(spec, num_classes, width, dropout, stride, normalization)
        if class_names is not None:
            class_names = tuple(str(name) for name in class_names)
            if len(class_names) != num_classes:
                raise InvalidValueError(
                    f"class_names must have num_classes={num_classes} names. "
                    f"Received: {len(class_names)} names"
                )
        if regressor not in REGRESSORS:
            raise InvalidValueError(
                f"regressor must be one of {REGRESSORS}. "
                f"Received: regressor={regressor!r}"
            )
        if shared_with is None:
            layers = _make_layers(
                spec,
                num_classes,
                width,
                initializer,
                dropout,
                normalization,
                class_initializer,
            )
        else:
            layers = _shared_layers(shared_with)
        if regressor is not None and "boxes" not in layers:
            outputs = 4 * (num_classes if regressor == "per_class" else 1)
            # The boxes start at their cells' windows (codes 0): random codes
            # on unnormalized features are large, and their L2 loss diverges.
            layers.update(
                _full_layers(
                    spec.regressor,
                    spec.regressor_names,
                    outputs,
                    width,
                    initializer,
                    normalization=normalization,
                    output_initializer="zeros",
                )
            )
            layers["boxes"] = _float32_output("boxes")

        # === Functional Model ===
        images = keras.Input((None, None, 3), name="images")
        x = images
        activations = {}
        for row, name in zip(spec.features, spec.conv_names):
            x = activations[name] = _conv_block(layers, name, x)
            if row.pool > 1:
                pool = "pool" + name[len("conv") :]
                # Offset max pooling, part 1: the last pooling at stride 1
                # pools at every offset at once.
                fine = stride == "fine" and pool == spec.last_pool_name
                pooling = keras.layers.MaxPooling2D(
                    row.pool,
                    1 if fine else row.pool,
                    name=pool,
                    dtype=layers[name].dtype_policy,
                )
                x = activations[pool] = pooling(x)
        features = x

        def head(names):
            y = features
            for i, name in enumerate(names):
                if stride == "fine" and i == 0:
                    # Part 2: a head's first layer reads every pool-th cell, so
                    # its outputs come out at the fine stride, interleaved.
                    conv = layers[name]
                    layers[name] = DilatedShare(
                        conv, spec.features[-1].pool, name=name, dtype=conv.dtype_policy
                    )
                y = activations[name] = _conv_block(layers, name, y)
                if _dropout_name(name) in layers:
                    y = layers[_dropout_name(name)](y)
            return y

        outputs = {"class_logits": layers["class_logits"](head(spec.fc_names))}
        if regressor is not None:
            outputs["boxes"] = layers["boxes"](head(spec.regressor_names))
        super().__init__(images, outputs, **kwargs)

        # === Config ===
        self.spec = spec
        self.num_classes = num_classes
        self.width = width
        self.initializer = initializer
        self.class_initializer = class_initializer
        self.dropout = dropout
        self.stride = stride
        self.class_names = class_names
        self.regressor = regressor
        self.normalization = normalization
        self._activations = activations

    def activation(self, name: str) -> keras.KerasTensor:
        """The symbolic output of layer `name` (e.g. "conv5") in this model.

        Layers are shared with `dense` twins, so `get_layer(name).output` is
        ambiguous; this is the one to build sub-models on.
        """
        if name not in self._activations:
            raise InvalidValueError(
                f"No layer named {name!r} in {self.name}. "
                f"Known layers: {sorted(self._activations)}"
            )
        return self._activations[name]

    @property
    def geometry(self):
        """Window, strides and map sizes (`architectures.Geometry`)."""
        return self.spec.geometry

    def __call__(self, images, *args, **kwargs):
        _check_images(images, self.geometry.min_input_size)
        return super().__call__(images, *args, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "spec": self.spec.to_dict(),
            "num_classes": self.num_classes,
            "width": self.width,
            "initializer": _serialize_initializer(self.initializer),
            "class_initializer": _serialize_initializer(self.class_initializer),
            "dropout": self.dropout,
            "stride": self.stride,
            "class_names": None if self.class_names is None else list(self.class_names),
            "regressor": self.regressor,
            "normalization": self.normalization,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_arguments(spec, num_classes, width, dropout, stride, normalization):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise InvalidTypeError(
            f"num_classes must be an int. Received: num_classes={num_classes!r} "
            f"of type {type(num_classes).__name__}"
        )
    if num_classes < 1:
        raise InvalidValueError(
            f"num_classes must be >= 1. Received: num_classes={num_classes}"
        )
    if not 0 < width < float("inf"):
        raise InvalidValueError(
            f"width must be > 0 and finite. Received: width={width}"
        )
    narrowest = min(
        [row.filters for row in spec.features]
        + [row.units for row in spec.classifier[:-1]]
    )
    if narrowest * width < 1:
        raise InvalidValueError(
            f"width={width} leaves less than one map in the narrowest layer "
            f"({narrowest} at width 1): use width >= 1/{narrowest}"
        )
    if not 0 <= dropout < 1:
        raise InvalidValueError(
            f"dropout must be in [0, 1). Received: dropout={dropout}"
        )
    if normalization not in NORMALIZATIONS:
        raise InvalidValueError(
            f"normalization must be one of {NORMALIZATIONS}. "
            f"Received: normalization={normalization!r}"
        )
    check_stride(stride)


def _check_images(images, min_size: int):
    """Static checks on the images of a call, where shapes are known."""
    if not hasattr(images, "shape") or not hasattr(images, "dtype"):
        raise InvalidTypeError(
            "OverFeat expects an array or tensor of images. "
            f"Received: images of type {type(images).__name__}"
        )
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[-1] not in (3, None):
        raise InvalidValueError(
            "OverFeat expects RGB images of shape [batch, height, width, 3]. "
            f"Received: images.shape={shape}"
        )
    dtype = keras.backend.standardize_dtype(images.dtype)
    if not keras.backend.is_float_dtype(dtype):
        raise InvalidValueError(
            "OverFeat expects float images (normalized pixels); convert "
            f"integer images first. Received: images.dtype={dtype}"
        )
    height, width = shape[1:3]
    if (height is not None and height < min_size) or (
        width is not None and width < min_size
    ):
        raise InvalidValueError(
            f"Images must be at least {min_size}x{min_size} pixels (the "
            f"network's window). Received: images.shape={shape}"
        )


def _conv_block(layers, name, x):
    """Convolution `name`, then (with normalization) its norm and ReLU."""
    x = layers[name](x)
    if _norm_name(name) in layers:
        x = layers[_relu_name(name)](layers[_norm_name(name)](x))
    return x


def _norm_name(name: str) -> str:
    return name + "_bn"


def _relu_name(name: str) -> str:
    return name + "_relu"


def _hidden_conv(name, filters, kernel, normalization, **kwargs) -> dict:
    """A hidden convolution with its ReLU: in the layer itself (the paper's
    network), or after a normalization layer (the conv then has no bias)."""
    if normalization is None:
        return {
            name: keras.layers.Conv2D(
                filters, kernel, activation="relu", name=name, **kwargs
            )
        }
    return {
        name: keras.layers.Conv2D(filters, kernel, use_bias=False, name=name, **kwargs),
        _norm_name(name): keras.layers.BatchNormalization(name=_norm_name(name)),
        _relu_name(name): keras.layers.ReLU(name=_relu_name(name)),
    }


def _serialize_initializer(initializer):
    if initializer is None or isinstance(initializer, str):
        return initializer
    return keras.initializers.serialize(initializer)


def _resolve_initializer(initializer):
    """`"paper"` as its N(0, 0.01); any other identifier checked (an unknown
    one fails here, before any layer is built)."""
    if initializer == "paper":
        return _PAPER_INITIALIZER
    if isinstance(initializer, str) and initializer not in INITIALIZERS:
        keras.initializers.get(initializer)
    return initializer


def _make_layers(
    spec,
    num_classes,
    width,
    initializer,
    dropout,
    normalization=None,
    class_initializer=None,
) -> dict:
    """The weighted layers of the table, by name (poolings hold no state)."""
    initializer = _resolve_initializer(initializer)
    layers = {}
    for row, name in zip(spec.features, spec.conv_names):
        layers.update(
            _hidden_conv(
                name,
                scaled(row.filters, width),
                row.kernel,
                normalization,
                strides=row.stride,
                padding="same" if row.padding else "valid",
                kernel_initializer=initializer,
            )
        )
    layers.update(
        _full_layers(
            spec.classifier,
            spec.fc_names,
            num_classes,
            width,
            initializer,
            dropout,
            normalization,
            output_initializer=class_initializer,
        )
    )
    layers["class_logits"] = _float32_output("class_logits")
    return layers


def _full_layers(
    rows,
    names,
    outputs,
    width,
    initializer,
    dropout=0.0,
    normalization=None,
    output_initializer=None,
) -> dict:
    """A head's fully connected rows as convolutions; the last has `outputs`
    maps (and `output_initializer`'s kernel, when given)."""
    initializer = _resolve_initializer(initializer)
    output_initializer = _resolve_initializer(output_initializer)
    layers = {}
    for row, name in zip(rows, names):
        hidden = row.units is not None
        if hidden:
            layers.update(
                _hidden_conv(
                    name,
                    scaled(row.units, width),
                    row.kernel,
                    normalization,
                    kernel_initializer=initializer,
                )
            )
        else:
            layers[name] = keras.layers.Conv2D(
                outputs,
                row.kernel,
                kernel_initializer=output_initializer or initializer,
                name=name,
            )
        if hidden and dropout:
            drop = _dropout_name(name)
            layers[drop] = keras.layers.Dropout(dropout, name=drop)
    return layers


def _float32_output(name):
    """An identity that keeps a head's output float32 under mixed precision."""
    return keras.layers.Activation("linear", dtype="float32", name=name)


def _dropout_name(fc_name: str) -> str:
    return "dropout" + fc_name[len("fc") :]


def _shared_layers(model: OverFeat) -> dict:
    """The layers of a built OverFeat, by name, with its own weights."""
    layers = {}
    for layer in model.layers[1:]:
        layer = _unwrap(layer)
        if not isinstance(layer, keras.layers.MaxPooling2D):
            layers[layer.name] = layer
    return layers


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


def load_model(path: str) -> OverFeat:
    """A saved OverFeat: a `.keras` file, or a run folder holding `model.keras`.

    Raises:
        FileNotFoundError: naming the file when there is none.
        ValueError: naming the file when it does not load (damaged, not a
            `.keras` archive, weights of another shape, refused by safe
            mode) or holds another kind of model.
    """
    path = str(path)
    if os.path.isdir(path):
        path = os.path.join(path, "model.keras")
    if not os.path.isfile(path):
        raise MissingFileError(f"No trained model at {path}")
    # Keras warns layer by layer before it fails on weights of another
    # shape: the warnings are shown only when the model loads.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = keras.saving.load_model(path, compile=False)
        except _UNREADABLE as error:
            raise InvalidValueError(
                f"Cannot load {path}: {_why_not_loaded(error)}"
            ) from None
    for warning in caught:
        warnings.showwarning(
            warning.message, warning.category, warning.filename, warning.lineno
        )
    if not isinstance(model, OverFeat):
        raise InvalidValueError(
            f"{path} holds a {type(model).__name__}, not an OverFeat model."
        )
    return model


# What keras.saving.load_model raises for a file it cannot read as a model.
_UNREADABLE = (OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile)


def _why_not_loaded(error: Exception) -> str:
    """Keras' reason in one line (its shape mismatch report runs to hundreds
    of lines of weight values; its "File not found" means "not a zip")."""
    text = str(error)
    shapes = re.search(
        r"variable.shape=(\(.*?\)), Received: value.shape=(\(.*?\))"
        r".*?Target variable: <Variable path=([^,]+)",
        text,
        re.DOTALL,
    )
    if shapes:
        expected, found, name = shapes.groups()
        return (
            f"its weights do not fit its architecture ({name} is {expected} "
            f"in the config, {found} in the weights)"
        )
    if "File not found" in text or isinstance(error, zipfile.BadZipFile):
        return "not a .keras archive (a damaged or truncated file?)"
    if isinstance(error, TypeError) and "could not be deserialized" in text:
        return "its config.json does not describe a model this package builds"
    if isinstance(error, KeyError) and "no item named" in text:
        return f"not a whole .keras archive ({text.strip(chr(34))})"
    if isinstance(error, KeyError):
        return f"its config.json lacks the key {text}"
    lines = text.strip().splitlines() or [type(error).__name__]
    return lines[0][:300]


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
    names = model.class_names or tuple(str(i) for i in range(model.num_classes))
    config.update(
        num_classes=model.num_classes + 1,
        class_names=(*names, "background"),
        regressor=model.regressor or "single",
        name=f"{model.name}_detector",
    )
    if dropout is not None:
        config.update(dropout=dropout)
    detector = OverFeat(**config)
    detector.build((None, None, None, 3))
    for layer in detector.layers:
        source = _unwrap(layer)
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
        theirs = _unwrap(source.get_layer(name)).get_weights()
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
    return [*names, *(_norm_name(n) for n in names if _norm_name(n) in present)]


def regressor_layer_names(model: OverFeat) -> list[str]:
    """The names of the box regressor's weighted layers (the ones localization
    trains on the frozen feature extractor), normalization layers included."""
    return _with_norms(model, model.spec.regressor_names) if model.regressor else []


def _unwrap(layer):
    return layer.conv if isinstance(layer, DilatedShare) else layer


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
    sources = {_unwrap(layer).name: _unwrap(layer) for layer in model.layers}
    for layer in folded.layers:
        layer = _unwrap(layer)
        if not layer.weights:
            continue
        weights = sources[layer.name].get_weights()
        norm = sources.get(_norm_name(layer.name))
        if norm is not None:
            gamma, beta, mean, variance = (
                np.asarray(w, np.float64) for w in norm.get_weights()
            )
            scale = gamma / np.sqrt(variance + norm.epsilon)
            weights = [weights[0] * scale, beta - mean * scale]
        layer.set_weights([np.asarray(w, np.float32) for w in weights])
    return folded


def overfeat_fast(num_classes: int = 1000, width: float = 1.0, **kwargs) -> OverFeat:
    """The paper's fast model (Table 1): 231 px window, 32 px stride.

    145,920,872 parameters at width 1 with 1000 classes. Keyword arguments
    go to `OverFeat` (initializer, dropout, stride, name).

    Example:
    >>> model = overfeat_tf.overfeat_fast(num_classes=10, width=0.125)
    >>> model(np.zeros((2, 231, 231, 3), "float32"))["class_logits"].shape
    TensorShape([2, 1, 1, 10])
    """
    kwargs.setdefault("name", "overfeat_fast")
    return OverFeat(FAST, num_classes, width=width, **kwargs)


def overfeat_accurate(
    num_classes: int = 1000, width: float = 1.0, **kwargs
) -> OverFeat:
    """The paper's accurate model (Table 3): 221 px window, 36 px stride.

    144,656,488 parameters at width 1 with 1000 classes. Keyword arguments
    go to `OverFeat` (initializer, dropout, stride, name).
    """
    kwargs.setdefault("name", "overfeat_accurate")
    return OverFeat(ACCURATE, num_classes, width=width, **kwargs)
