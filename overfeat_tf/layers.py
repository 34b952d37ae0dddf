"""The network's layers, made from the paper's tables: convolutions (with an
optional normalization), the fully connected layers as convolutions, their
names, initializers, and the dilated layer that shares weights with a
fine-stride twin. Only Keras layers and `keras.ops` (TensorFlow and JAX)."""

from __future__ import annotations

import keras

from overfeat_tf.architectures import (
    scaled,
)

INITIALIZERS = ("he_normal", "paper")


# A departure from the paper, by option: a normalization layer between each
# convolution and its ReLU. None is the paper's network.
NORMALIZATIONS = (None, "batch")


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


def conv_block(layers, name, x):
    """Convolution `name`, then (with normalization) its norm and ReLU."""
    x = layers[name](x)
    if norm_name(name) in layers:
        x = layers[relu_name(name)](layers[norm_name(name)](x))
    return x


def norm_name(name: str) -> str:
    return name + "_bn"


def relu_name(name: str) -> str:
    return name + "_relu"


def hidden_conv(name, filters, kernel, normalization, **kwargs) -> dict:
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
        norm_name(name): keras.layers.BatchNormalization(name=norm_name(name)),
        relu_name(name): keras.layers.ReLU(name=relu_name(name)),
    }


def serialize_initializer(initializer):
    if initializer is None or isinstance(initializer, str):
        return initializer
    return keras.initializers.serialize(initializer)


def resolve_initializer(initializer):
    """`"paper"` as its N(0, 0.01); any other identifier checked (an unknown
    one fails here, before any layer is built)."""
    if initializer == "paper":
        return _PAPER_INITIALIZER
    if isinstance(initializer, str) and initializer not in INITIALIZERS:
        keras.initializers.get(initializer)
    return initializer


def make_layers(
    spec,
    num_classes,
    width,
    initializer,
    dropout,
    normalization=None,
    class_initializer=None,
) -> dict:
    """The weighted layers of the table, by name (poolings hold no state)."""
    initializer = resolve_initializer(initializer)
    layers = {}
    for row, name in zip(spec.features, spec.conv_names):
        layers.update(
            hidden_conv(
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
        full_layers(
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
    layers["class_logits"] = float32_output("class_logits")
    return layers


def full_layers(
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
    initializer = resolve_initializer(initializer)
    output_initializer = resolve_initializer(output_initializer)
    layers = {}
    for row, name in zip(rows, names):
        hidden = row.units is not None
        if hidden:
            layers.update(
                hidden_conv(
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
            drop = dropout_name(name)
            layers[drop] = keras.layers.Dropout(dropout, name=drop)
    return layers


def float32_output(name):
    """An identity that keeps a head's output float32 under mixed precision."""
    return keras.layers.Activation("linear", dtype="float32", name=name)


def dropout_name(fc_name: str) -> str:
    return "dropout" + fc_name[len("fc") :]


def unwrap(layer):
    return layer.conv if isinstance(layer, DilatedShare) else layer


def shared_layers(model: keras.Model) -> dict:
    """The layers of a built OverFeat, by name, with its own weights."""
    layers = {}
    for layer in model.layers[1:]:
        layer = unwrap(layer)
        if not isinstance(layer, keras.layers.MaxPooling2D):
            layers[layer.name] = layer
    return layers
