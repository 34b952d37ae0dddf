"""The paper's layer tables as data, and every geometric fact derived from them.

Tables 1 and 3 of Sermanet et al. (2014) are written once here as rows. The
window (231 / 221 px), the coarse and fine output strides, the minimum input
size, the output map size at any input size and the input-pixel window of
every output cell all follow from these rows; nothing downstream types them.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import numpy as np

from overfeat_tf.errors import InvalidValueError

Stride = Literal["coarse", "fine"]
STRIDES = ("coarse", "fine")


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One convolutional row of the paper's tables (layers 1 to 5 or 6).

    Attributes:
        filters: number of output maps at width 1.
        kernel: square filter size.
        stride: convolution stride.
        padding: zero padding on each side; 0, or (kernel - 1) / 2 with
            stride 1 (a size-preserving "same" convolution, as in the paper).
        pool: size of the non-overlapping max pooling after the
            convolution (pool stride = pool size); 1 for no pooling.
    """

    filters: int
    kernel: int
    stride: int = 1
    padding: int = 0
    pool: int = 1

    def __post_init__(self):
        for field in ("filters", "kernel", "stride", "pool"):
            if getattr(self, field) < 1:
                raise InvalidValueError(
                    f"ConvLayer.{field} must be >= 1. "
                    f"Received: {field}={getattr(self, field)}"
                )
        same = self.stride == 1 and 2 * self.padding == self.kernel - 1
        if self.padding != 0 and not same:
            raise InvalidValueError(
                "ConvLayer.padding must be 0 or (kernel - 1) / 2 with "
                f"stride 1. Received: padding={self.padding}, "
                f"kernel={self.kernel}, stride={self.stride}"
            )


@dataclasses.dataclass(frozen=True)
class FullLayer:
    """One fully connected row, run as a convolution.

    Attributes:
        units: output maps at width 1; None for the class layer, whose size
            is the number of classes.
        kernel: the spatial extent of its input at the window size (6 for
            the fast model's layer 6, 5 for the accurate model's layer 7,
            1 for the others): the kernel of its dense convolution.
    """

    units: int | None
    kernel: int = 1


@dataclasses.dataclass(frozen=True)
class OverFeatSpec:
    """A whole network: the feature extractor rows, then the classifier.

    Layers are numbered from 1 across both lists, as in the paper, giving
    the layer names `conv1`... and `fc6`... (`pool1`... after pooling rows).
    The last `FullLayer` must be the class layer (`units=None`).
    """

    name: str
    features: tuple[ConvLayer, ...]
    classifier: tuple[FullLayer, ...]

    def __post_init__(self):
        if not self.features or self.features[-1].pool == 1:
            raise InvalidValueError(
                "OverFeatSpec.features must end with a pooling layer (the "
                "last pooling is what the fine stride offsets). "
                f"Received: {self.features}"
            )
        if not self.classifier or self.classifier[-1].units is not None:
            raise InvalidValueError(
                "OverFeatSpec.classifier must end with the class layer "
                f"FullLayer(units=None). Received: {self.classifier}"
            )
        if any(row.units is None for row in self.classifier[:-1]):
            raise InvalidValueError(
                "Only the last classifier row may have units=None. "
                f"Received: {self.classifier}"
            )

    @property
    def conv_names(self) -> tuple[str, ...]:
        return tuple(f"conv{i + 1}" for i in range(len(self.features)))

    @property
    def fc_names(self) -> tuple[str, ...]:
        first = len(self.features) + 1
        return tuple(f"fc{first + i}" for i in range(len(self.classifier)))

    @property
    def last_pool_name(self) -> str:
        """The last pooling layer: the end of the feature extractor."""
        return f"pool{len(self.features)}"

    @property
    def regressor_names(self) -> tuple[str, ...]:
        return tuple(f"regressor{i + 1}" for i in range(len(self.regressor)))

    @property
    def regressor(self) -> tuple[FullLayer, ...]:
        """The box regressor's rows (section 4.3): 4096 and 1024 units, then
        the box edges (`units=None`: 4, or 4 per class). Its first row has the
        classifier's first footprint, so it runs at every cell and offset on
        the same pooled features."""
        return (
            FullLayer(4096, kernel=self.classifier[0].kernel),
            FullLayer(1024),
            FullLayer(None),
        )

    @functools.cached_property
    def geometry(self) -> Geometry:
        return Geometry(self)

    @classmethod
    def from_dict(cls, config: dict) -> OverFeatSpec:
        return cls(
            name=config["name"],
            features=tuple(ConvLayer(**row) for row in config["features"]),
            classifier=tuple(FullLayer(**row) for row in config["classifier"]),
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Sermanet et al. (2014), Table 1: the fast model.
FAST = OverFeatSpec(
    name="fast",
    features=(
        ConvLayer(96, kernel=11, stride=4, pool=2),
        ConvLayer(256, kernel=5, pool=2),
        ConvLayer(512, kernel=3, padding=1),
        ConvLayer(1024, kernel=3, padding=1),
        ConvLayer(1024, kernel=3, padding=1, pool=2),
    ),
    classifier=(FullLayer(3072, kernel=6), FullLayer(4096), FullLayer(None)),
)

# Sermanet et al. (2014), Table 3: the accurate model.
ACCURATE = OverFeatSpec(
    name="accurate",
    features=(
        ConvLayer(96, kernel=7, stride=2, pool=3),
        ConvLayer(256, kernel=7, pool=2),
        ConvLayer(512, kernel=3, padding=1),
        ConvLayer(512, kernel=3, padding=1),
        ConvLayer(1024, kernel=3, padding=1),
        ConvLayer(1024, kernel=3, padding=1, pool=3),
    ),
    classifier=(FullLayer(4096, kernel=5), FullLayer(4096), FullLayer(None)),
)


@dataclasses.dataclass(frozen=True)
class _Op:
    """A sliding operation of the dense network, for size arithmetic.

    `maps` is the output maps of a convolution (None for the class layer)
    and 0 for a max pooling; `name` is the layer's name in the model.
    """

    name: str
    maps: int | None
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1

    @property
    def extent(self) -> int:
        return self.dilation * (self.kernel - 1) + 1

    def output_size(self, size: int) -> int:
        return (size + 2 * self.padding - self.extent) // self.stride + 1


def _ops(spec: OverFeatSpec, stride: Stride) -> list[_Op]:
    """The network as sliding ops; fine stride re-parameterises two of them.

    Offset max pooling (docs/design.md, "Fine stride in one pass") equals
    the last pooling with stride 1 followed by the first fully connected
    layer dilated by the pooling size, so the fine network differs from the
    coarse one in exactly those two ops.
    """
    ops = []
    for row, name in zip(spec.features, spec.conv_names):
        ops.append(_Op(name, row.filters, row.kernel, row.stride, row.padding))
        if row.pool > 1:
            ops.append(_Op("pool" + name[len("conv") :], 0, row.pool, row.pool))
    last_pool = spec.features[-1].pool
    (first_fc, *other_fcs), (first_name, *other_names) = spec.classifier, spec.fc_names
    dilation = 1
    if stride == "fine":
        ops[-1] = _Op(spec.last_pool_name, 0, last_pool, 1)
        dilation = last_pool
    ops.append(_Op(first_name, first_fc.units, first_fc.kernel, dilation=dilation))
    ops.extend(_Op(n, r.units, r.kernel) for r, n in zip(other_fcs, other_names))
    return ops


def check_stride(stride: str) -> Stride:
    if stride not in STRIDES:
        raise InvalidValueError(
            f"stride must be one of {STRIDES}. Received: stride={stride!r}"
        )
    return stride


class Geometry:
    """Windows, strides and map sizes of one network, derived from its rows.

    An output cell (i, j) at stride s is the class-score vector of the
    window of `window` x `window` input pixels whose top-left corner is
    (i * s, j * s): running the network on that crop alone gives the same
    feature-map alignment (zero padding inside the crop aside).

    Attributes:
        window: the training window, the smallest input giving one cell.
        coarse_stride: input pixels between neighbouring coarse cells.
        fine_stride: input pixels between neighbouring fine cells (offset
            max pooling): the coarse stride divided by the last pool size.
        min_input_size: the smallest height and width accepted (= window,
            at both strides).
    """

    def __init__(self, spec: OverFeatSpec):
        self.spec = spec
        self.window = self.input_size(1, "coarse")
        self.min_input_size = max(
            self.input_size(1, "coarse"), self.input_size(1, "fine")
        )
        self.coarse_stride = int(np.prod([op.stride for op in _ops(spec, "coarse")]))
        self.fine_stride = int(np.prod([op.stride for op in _ops(spec, "fine")]))

    def __repr__(self):
        return (
            f"Geometry({self.spec.name}: window={self.window}, "
            f"coarse_stride={self.coarse_stride}, "
            f"fine_stride={self.fine_stride})"
        )

    def stride(self, stride: Stride = "coarse") -> int:
        """Input pixels between neighbouring output cells."""
        check_stride(stride)
        return self.fine_stride if stride == "fine" else self.coarse_stride

    def output_size(self, size: int, stride: Stride = "coarse") -> int:
        """Output cells along one side for an input side of `size` pixels.

        Returns 0 or less when the input is smaller than the window.
        """
        for op in _ops(self.spec, check_stride(stride)):
            size = op.output_size(size)
        return size

    def output_shape(
        self, height: int, width: int, stride: Stride = "coarse"
    ) -> tuple[int, int]:
        """The class map's (h, w) for a `height` x `width` input."""
        return self.output_size(height, stride), self.output_size(width, stride)

    def layer_shapes(
        self, height: int, width: int, stride: Stride = "coarse"
    ) -> dict[str, tuple[int, int]]:
        """Each layer's output (h, w) for a `height` x `width` input, by name."""
        shapes, h, w = {}, height, width
        for op in _ops(self.spec, check_stride(stride)):
            h, w = op.output_size(h), op.output_size(w)
            shapes[op.name] = (h, w)
        return shapes

    def input_size(self, cells: int, stride: Stride = "coarse") -> int:
        """The smallest input side giving `cells` output cells."""
        size = cells
        for op in reversed(_ops(self.spec, check_stride(stride))):
            size = (size - 1) * op.stride + op.extent - 2 * op.padding
        return size

    def cell_windows(
        self, height: int, width: int, stride: Stride = "coarse"
    ) -> np.ndarray:
        """The input-pixel window of every cell of the map for an input size.

        Returns:
            float32 array [h, w, 4] of boxes (x1, y1, x2, y2) in input
            pixels, x2 = x1 + window (exclusive), for the (h, w) map that a
            `height` x `width` input gives at `stride`.
        """
        h, w = self.output_shape(height, width, stride)
        s = self.stride(stride)
        y1, x1 = np.meshgrid(np.arange(h) * s, np.arange(w) * s, indexing="ij")
        boxes = np.stack([x1, y1, x1 + self.window, y1 + self.window], -1)
        return boxes.astype(np.float32)


def scaled(units: int, width: float) -> int:
    """Maps of a layer in a width-scaled model (at least one)."""
    return max(1, round(units * width))


def multiply_adds(
    spec: OverFeatSpec,
    height: int,
    width: int,
    *,
    num_classes: int = 1000,
    width_multiplier: float = 1.0,
    stride: Stride = "coarse",
) -> int:
    """Exact multiply-adds of one dense pass over a `height` x `width` image.

    Counts the convolutions, fully connected layers included; pooling and
    ReLU do no multiply-adds. Multiply by 2 for FLOPs.
    """
    channels, total = 3, 0
    h, w = height, width
    for op in _ops(spec, check_stride(stride)):
        h, w = op.output_size(h), op.output_size(w)
        if op.maps == 0:
            continue
        maps = num_classes if op.maps is None else scaled(op.maps, width_multiplier)
        total += h * w * maps * op.kernel * op.kernel * channels
        channels = maps
    return total
