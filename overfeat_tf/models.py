"""The OverFeat networks as fully convolutional Keras functional models.

Every fully connected layer is a convolution, so one model takes a training
window or a whole image and returns a class-score map. Its layers come from
`layers`; the models made from a built one (the fine-stride twin, the
feature extractor, added heads) from `derived`; loading from `saving`. Only
Keras layers and `keras.ops`: the models build and run on the TensorFlow
and JAX backends alike.
"""

from __future__ import annotations

from typing import Sequence

import keras

from overfeat_tf.architectures import (
    ACCURATE,
    FAST,
    OverFeatSpec,
    Stride,
    check_stride,
)
from overfeat_tf.errors import InvalidTypeError, InvalidValueError
from overfeat_tf.layers import (
    NORMALIZATIONS,
    DilatedShare,
    conv_block,
    dropout_name,
    float32_output,
    full_layers,
    make_layers,
    serialize_initializer,
    shared_layers,
)

# The box regressor (section 4.3): one box per cell for all classes (the
# paper's better "single-class regressor") or one per class.
REGRESSORS = (None, "single", "per_class")
# The name of a detector's extra class, the last (section 4.4).
BACKGROUND = "background"


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
        class_names: the label map, one name per class; saved with the
            model, so inference and exports name classes. Default the class
            indices as strings ("0", "1", ...). A last class named
            `"background"` makes the model a detector (`task`).
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
        if class_names is None:
            class_names = tuple(str(i) for i in range(num_classes))
        else:
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
            layers = make_layers(
                spec,
                num_classes,
                width,
                initializer,
                dropout,
                normalization,
                class_initializer,
            )
        else:
            layers = shared_layers(shared_with)
        if regressor is not None and "boxes" not in layers:
            outputs = 4 * (num_classes if regressor == "per_class" else 1)
            # The boxes start at their cells' windows (codes 0): random codes
            # on unnormalized features are large, and their L2 loss diverges.
            layers.update(
                full_layers(
                    spec.regressor,
                    spec.regressor_names,
                    outputs,
                    width,
                    initializer,
                    normalization=normalization,
                    output_initializer="zeros",
                )
            )
            layers["boxes"] = float32_output("boxes")

        # === Functional Model ===
        images = keras.Input((None, None, 3), name="images")
        x = images
        activations = {}
        for row, name in zip(spec.features, spec.conv_names):
            x = activations[name] = conv_block(layers, name, x)
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
                y = activations[name] = conv_block(layers, name, y)
                if dropout_name(name) in layers:
                    y = layers[dropout_name(name)](y)
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
    def task(self) -> str:
        """What the model is for: `"detect"` (its last class is the
        background), `"localize"` (a box regressor) or `"classify"`."""
        if self.num_classes > 1 and self.class_names[-1] == BACKGROUND:
            return "detect"
        return "localize" if self.regressor else "classify"

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
            "initializer": serialize_initializer(self.initializer),
            "class_initializer": serialize_initializer(self.class_initializer),
            "dropout": self.dropout,
            "stride": self.stride,
            "class_names": list(self.class_names),
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
