"""The paper's numbers, derived from the layer tables (Tables 1, 3 and 5)."""

import keras
import numpy as np
import pytest
from helpers import TINY, make_images

import overfeat_tf as of

TABLE_5 = [  # accurate model: input (h, w), layer-5 pre-pool, fine output
    ((245, 245), (17, 17), (3, 3)),
    ((281, 317), (20, 23), (6, 9)),
    ((317, 389), (23, 29), (9, 15)),
    ((389, 461), (29, 35), (15, 21)),
    ((425, 497), (32, 38), (18, 24)),
    ((461, 569), (35, 44), (21, 30)),
]


def release_coarse_size(spec, size):
    """The original release's formulas (sermanet/OverFeat), integer steps."""
    if spec is of.FAST:
        return ((size - 11) // 4 + 1) // 8 - 6
    return ((size - 7) // 2 + 1) // 18 - 5


@pytest.mark.parametrize(
    "spec, window, coarse, fine",
    [(of.FAST, 231, 32, 16), (of.ACCURATE, 221, 36, 12)],
)
def test_window_and_strides(spec, window, coarse, fine):
    g = spec.geometry
    assert (g.window, g.coarse_stride, g.fine_stride) == (window, coarse, fine)
    assert g.min_input_size == window
    assert g.output_shape(window, window, "coarse") == (1, 1)
    assert g.output_shape(window, window, "fine") == (1, 1)
    assert g.output_size(window - 1, "coarse") < 1
    assert g.output_size(window - 1, "fine") < 1


@pytest.mark.parametrize("size, pre_pool, expected", TABLE_5)
def test_table_5_fine_maps(size, pre_pool, expected):
    g = of.ACCURATE.geometry
    assert g.output_shape(*size, "fine") == expected
    # The paper's "layer 5" is the last conv before the last pooling.
    assert g.layer_shapes(*size, "fine")["conv6"] == pre_pool
    k = of.ACCURATE.features[-1].pool
    coarse = g.layer_shapes(*size, "coarse")["pool6"]
    assert coarse == (pre_pool[0] // k, pre_pool[1] // k)


def test_table_5_fine_maps_from_the_model(rng):
    model = of.dense(of.overfeat_accurate(4, width=TINY), "fine")
    for size, _, expected in TABLE_5[:3]:
        out = model(make_images(rng, 1, *size))["class_logits"]
        assert tuple(out.shape) == (1, *expected, 4)


@pytest.mark.parametrize("spec", [of.FAST, of.ACCURATE])
def test_coarse_maps_follow_the_release_formulas(spec):
    g = spec.geometry
    for size in range(g.window, 1200):
        assert g.output_size(size, "coarse") == release_coarse_size(spec, size)


@pytest.mark.parametrize("spec", [of.FAST, of.ACCURATE])
def test_fine_map_counts_every_offset(spec):
    # Offset pooling at (dx, dy) in {0..k-1}^2 gives a coarse map of the
    # features from that offset; the fine map holds all of them.
    g, k = spec.geometry, spec.features[-1].pool
    shift = g.coarse_stride // k
    for size in range(g.window, 700, 7):
        total = sum(max(0, g.output_size(size - d * shift, "coarse")) for d in range(k))
        assert g.output_size(size, "fine") == total


@pytest.mark.parametrize("builder", [of.overfeat_fast, of.overfeat_accurate])
def test_model_maps_match_geometry(builder, rng):
    model = builder(3, width=TINY)
    fine = of.dense(model, "fine")
    for h, w in [(model.geometry.window, 300), (333, 402)]:
        images = make_images(rng, 1, h, w)
        for net in (model, fine):
            out = net(images)["class_logits"]
            assert out.shape[1:3] == net.geometry.output_shape(h, w, net.stride)


def test_cell_windows():
    g = of.ACCURATE.geometry
    boxes = g.cell_windows(281, 317, "fine")
    assert boxes.shape == (6, 9, 4)
    np.testing.assert_array_equal(
        boxes[2, 5], [5 * 12, 2 * 12, 5 * 12 + 221, 2 * 12 + 221]
    )
    # The last window fits in the image; one more stride would not.
    assert boxes[..., 2].max() <= 317 and boxes[..., 2].max() + 12 > 317
    assert boxes[..., 3].max() <= 281 and boxes[..., 3].max() + 12 > 281


@pytest.mark.parametrize(
    "builder, expected",
    [(of.overfeat_fast, 145_920_872), (of.overfeat_accurate, 144_656_488)],
)
def test_parameter_counts(builder, expected):
    assert builder(num_classes=1000, width=1.0).count_params() == expected


@pytest.mark.parametrize("builder", [of.overfeat_fast, of.overfeat_accurate])
@pytest.mark.parametrize("stride", ["coarse", "fine"])
def test_multiply_adds_count_every_layer(builder, stride, rng):
    model = of.dense(builder(7, width=TINY), stride)
    h, w = 250, 310
    # Independent count: each conv's output size, read off the model itself.
    names = [*model.spec.conv_names, *model.spec.fc_names]
    probe = keras.Model(model.input, [model.activation(n) for n in names])
    expected, channels = 0, 3
    for name, out in zip(names, probe(make_images(rng, 1, h, w))):
        layer = model.get_layer(name)
        k = getattr(layer, "conv", layer).kernel_size[0]
        expected += out.shape[1] * out.shape[2] * out.shape[3] * k * k * channels
        channels = out.shape[3]
    got = of.multiply_adds(
        model.spec, h, w, num_classes=7, width_multiplier=TINY, stride=stride
    )
    assert got == expected


def test_multiply_adds_match_the_paper():
    # Section 2: about 2.8 G (fast) and 5.4 G (accurate) per window.
    assert round(of.multiply_adds(of.FAST, 231, 231) / 1e9, 1) == 2.8
    assert round(of.multiply_adds(of.ACCURATE, 221, 221) / 1e9, 1) == 5.4


def test_spec_round_trip():
    for spec in (of.FAST, of.ACCURATE):
        assert of.OverFeatSpec.from_dict(spec.to_dict()) == spec


def test_bad_tables_are_rejected():
    with pytest.raises(ValueError, match="padding"):
        of.ConvLayer(64, kernel=3, stride=2, padding=1)
    with pytest.raises(ValueError, match="filters"):
        of.ConvLayer(0, kernel=3)
    conv = (of.ConvLayer(8, 3, pool=2),)
    with pytest.raises(ValueError, match="class layer"):
        of.OverFeatSpec("x", conv, (of.FullLayer(8, 2),))
    with pytest.raises(ValueError, match="pooling"):
        of.OverFeatSpec("x", (of.ConvLayer(8, 3),), (of.FullLayer(None),))


def test_unknown_stride():
    with pytest.raises(ValueError, match="'medium'"):
        of.FAST.geometry.output_size(300, "medium")
