"""The Keras models: builders, shared weights, errors, saving, training."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import TINY, make_images, normalized, sharpened
from reference import fc_weights, layer_output

import overfeat_tf as of
from overfeat_tf.training.recipe import class_map_crossentropy

BUILDERS = [of.overfeat_fast, of.overfeat_accurate]


def logits(model, images, **kwargs):
    return np.asarray(model(images, **kwargs)["class_logits"])


@pytest.mark.parametrize("builder", BUILDERS)
def test_layer_names_follow_the_paper(builder):
    model = builder(10, width=TINY)
    names = [layer.name for layer in model.layers]
    spec = model.spec
    for name in (*spec.conv_names, *spec.fc_names, spec.last_pool_name):
        assert name in names
    assert spec.conv_names[0] == "conv1" and spec.fc_names[-1] in ("fc8", "fc9")
    assert names[-1] == "class_logits"
    # Dropout 0.5 after each hidden fully connected layer, nowhere else.
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.name for d in drops] == ["dropout" + n[2:] for n in spec.fc_names[:2]]
    assert all(d.rate == 0.5 for d in drops)
    # Pooling is non-overlapping.
    for layer in model.layers:
        if isinstance(layer, keras.layers.MaxPooling2D):
            assert layer.pool_size == layer.strides


def test_width_scales_maps_but_not_geometry():
    full, tiny = of.overfeat_accurate(), of.overfeat_accurate(7, width=TINY)
    for name in (*full.spec.conv_names, *full.spec.fc_names[:-1]):
        a, b = full.get_layer(name), tiny.get_layer(name)
        assert b.filters == round(a.filters * TINY)
        assert (a.kernel_size, a.strides, a.padding) == (
            b.kernel_size,
            b.strides,
            b.padding,
        )
    assert tiny.get_layer("fc9").filters == 7
    assert tiny.geometry.window == full.geometry.window == 221


@pytest.mark.parametrize("builder", BUILDERS)
def test_dense_twin_shares_weights(builder, rng):
    model = builder(6, width=TINY)
    fine = of.dense(model, "fine")
    coarse = of.dense(fine, "coarse")
    assert fine.count_params() == model.count_params()
    assert {id(v) for v in fine.weights} == {id(v) for v in model.weights}
    images = make_images(rng, 2, 260, 290)
    before = logits(fine, images)
    np.testing.assert_allclose(logits(coarse, images), logits(model, images), rtol=1e-5)
    # A weight changed in the model is the twin's too (no copy to drift).
    fc = model.get_layer(model.spec.fc_names[0])
    fc.bias.assign(fc.bias + 1.0)
    assert not np.allclose(logits(fine, images), before)
    np.testing.assert_allclose(logits(coarse, images), logits(model, images), rtol=1e-5)


@pytest.mark.parametrize("builder", BUILDERS)
def test_feature_extractor_is_the_models_activation(builder, rng):
    model = builder(6, width=TINY)
    images = make_images(rng, 2, 250, 280)
    extractor = of.feature_extractor(model)
    features = np.asarray(extractor(images), np.float64)
    # Independently: run the table's layers one by one, eagerly.
    x = images
    for row, name in zip(model.spec.features, model.spec.conv_names):
        x = model.get_layer(name)(x)
        if row.pool > 1:
            x = keras.layers.MaxPooling2D(row.pool)(x)
    np.testing.assert_allclose(features, np.asarray(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        features, layer_output(model, model.spec.last_pool_name, images)
    )
    assert {id(v) for v in extractor.weights} <= {id(v) for v in model.weights}
    # The classifier on those features is the model's output.
    (kernel, bias), *rest = fc_weights(model)
    k = kernel.shape[0]
    x = np.einsum("bhwc,hwcu->bu", features[:, :k, :k], kernel) + bias
    for kernel, bias in rest:
        x = np.maximum(x, 0) @ kernel[0, 0] + bias
    np.testing.assert_allclose(logits(model, images)[:, 0, 0], x, rtol=1e-4, atol=1e-5)


def test_initializers():
    paper = of.overfeat_fast(10, width=0.25, initializer="paper")
    he = of.overfeat_fast(10, width=0.25)
    for name in ("conv2", "fc6"):
        w = np.asarray(paper.get_layer(name).kernel)
        assert abs(w.std() - 0.01) < 5e-4 and abs(w.mean()) < 5e-4
        w = np.asarray(he.get_layer(name).kernel)
        fan_in = np.prod(w.shape[:-1])
        # He et al. (2015): std sqrt(2 / fan_in) (Keras truncates, rescaled).
        assert abs(w.std() / np.sqrt(2 / fan_in) - 1) < 0.03
    assert not np.asarray(paper.get_layer("fc6").bias).any()


def test_class_initializer_zeros_starts_every_class_equal(rng, tmp_path):
    # The class layer alone starts at zero: the loss is log C for any image,
    # and the hidden layers are He-normal as in a default model.
    keras.utils.set_random_seed(3)
    zero = of.overfeat_fast(10, width=TINY, class_initializer="zeros")
    keras.utils.set_random_seed(3)
    default = of.overfeat_fast(10, width=TINY)
    images = make_images(rng, 2, 231, 231)
    np.testing.assert_array_equal(logits(zero, images), 0.0)
    assert np.abs(logits(default, images)).max() > 0.1
    labels = np.array([3, 7])
    loss = np.asarray(class_map_crossentropy(labels, zero(images)["class_logits"]))
    np.testing.assert_allclose(loss, np.log(10), rtol=1e-6)
    for name in ("conv1", "fc7"):
        np.testing.assert_array_equal(
            zero.get_layer(name).kernel, default.get_layer(name).kernel
        )
    zero.save(tmp_path / "m.keras")
    assert keras.saving.load_model(tmp_path / "m.keras").class_initializer == "zeros"


def test_dropout_only_in_training(rng):
    model = of.overfeat_fast(10, width=TINY)
    images = make_images(rng, 2, 231, 231)
    np.testing.assert_array_equal(logits(model, images), logits(model, images))
    a, b = logits(model, images, training=True), logits(model, images, training=True)
    assert not np.allclose(a, b)
    off = of.overfeat_fast(10, width=TINY, dropout=0.0)
    assert not any(isinstance(x, keras.layers.Dropout) for x in off.layers)


@pytest.mark.parametrize("builder", BUILDERS)
def test_save_load_round_trip(builder, rng, tmp_path):
    model = of.dense(builder(6, width=TINY, initializer="paper"), "fine")
    images = make_images(rng, 1, 260, 300)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded, of.OverFeat)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(logits(loaded, images), logits(model, images))


@pytest.mark.parametrize("builder", BUILDERS)
def test_normalization_none_is_the_papers_network(builder):
    # Same layers, same weights, same outputs as a model built without the
    # argument; "batch" adds a norm between every hidden conv and its ReLU.
    keras.utils.set_random_seed(1)
    plain = builder(10, width=TINY)
    keras.utils.set_random_seed(1)
    none = builder(10, width=TINY, normalization=None)
    assert [w.shape for w in none.weights] == [w.shape for w in plain.weights]
    images = make_images(np.random.default_rng(0), 1, 250, 260)
    np.testing.assert_array_equal(logits(none, images), logits(plain, images))
    assert not any(isinstance(x, keras.layers.BatchNormalization) for x in none.layers)

    batch = builder(10, width=TINY, normalization="batch")
    spec = batch.spec
    hidden = (*spec.conv_names, *spec.fc_names[:-1])
    norms = [
        x.name for x in batch.layers if isinstance(x, keras.layers.BatchNormalization)
    ]
    assert sorted(norms) == sorted(name + "_bn" for name in hidden)
    for name in hidden:  # the norm's beta replaces the bias
        conv = batch.get_layer(name)
        assert not conv.use_bias and conv.activation is keras.activations.linear
        maps = conv.filters
        assert batch.get_layer(name + "_bn").gamma.shape == (maps,)
    # Parameters: minus the hidden biases, plus 4 per map (2 trainable).
    maps = sum(batch.get_layer(name).filters for name in hidden)
    assert batch.count_params() == plain.count_params() + 3 * maps


@pytest.mark.parametrize("builder", BUILDERS)
def test_normalization_training_and_inference(builder, rng):
    # Training normalizes with the batch's statistics, inference with the
    # moving ones; fit moves them.
    model = normalized(builder, 3, width=TINY, dropout=0.0)
    window = model.geometry.window
    images = make_images(rng, 4, window, window)
    assert not np.allclose(
        logits(model, images, training=True), logits(model, images), atol=1e-3
    )
    model.compile(optimizer="sgd", loss={"class_logits": "mse"})
    before = np.asarray(model.get_layer("conv1_bn").moving_mean)
    model.fit(images, {"class_logits": np.zeros((4, 1, 1, 3))}, verbose=0)
    assert not np.allclose(model.get_layer("conv1_bn").moving_mean, before)


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("stride", ["coarse", "fine"])
def test_fold_normalization_keeps_outputs(builder, stride, rng, tmp_path):
    # sharpened: the box layer starts at zero, which would hide any error.
    model = sharpened(of.with_regressor(normalized(builder, 6, width=TINY)))
    folded = of.fold_normalization(model)
    assert folded.normalization is None and folded.regressor == "single"
    assert not any(
        isinstance(x, keras.layers.BatchNormalization) for x in folded.layers
    )
    images = make_images(rng, 2, 262, 300)
    want, got = of.dense(model, stride)(images), of.dense(folded, stride)(images)
    for key in ("class_logits", "boxes"):
        want_key, got_key = np.asarray(want[key]), np.asarray(got[key])
        scale = np.abs(want_key).max()
        assert scale > 0.01
        np.testing.assert_allclose(got_key, want_key, atol=1e-5 * scale)
    assert of.fold_normalization(folded) is folded
    # A normalized model saves and loads with its statistics.
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(
        np.asarray(loaded(images)["class_logits"]),
        np.asarray(model(images)["class_logits"]),
    )


def test_regressor_of_a_normalized_model_round_trips(rng, tmp_path):
    # The regressor's weights, norms included (and no norm on its output
    # layer), copy into a fresh localizer of the same classifier.
    classifier = normalized(of.overfeat_fast, 4, width=TINY)
    trained = sharpened(of.with_regressor(classifier))
    assert of.derived.regressor_layer_names(trained) == [
        "regressor1",
        "regressor2",
        "regressor3",
        "regressor1_bn",
        "regressor2_bn",
    ]
    trained.save(tmp_path / "localizer.keras")
    copy = of.with_regressor(classifier, weights=str(tmp_path / "localizer.keras"))
    images = make_images(rng, 1, 260, 280)
    np.testing.assert_array_equal(
        np.asarray(copy(images)["boxes"]), np.asarray(trained(images)["boxes"])
    )


def test_fit_predict_and_mixed_precision(rng):
    model = of.overfeat_accurate(4, width=TINY)
    images = make_images(rng, 4, 221, 221)
    labels = np.array([0, 1, 2, 3]).reshape(4, 1, 1)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.6),
        loss={
            "class_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        },
    )
    ds = tf.data.Dataset.from_tensor_slices((images, {"class_logits": labels})).batch(2)
    before = [np.asarray(v) for v in model.trainable_weights]
    history = model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(
        not np.array_equal(a, np.asarray(b))
        for a, b in zip(before, model.trainable_weights)
    )
    predicted = model.predict(ds, verbose=0)["class_logits"]
    np.testing.assert_allclose(predicted, logits(model, images), rtol=1e-5, atol=1e-6)

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = of.overfeat_accurate(4, width=TINY)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    mixed.set_weights(model.get_weights())
    out = mixed(images)["class_logits"]
    assert out.dtype == "float32"
    assert mixed.get_layer("conv1").compute_dtype == "bfloat16"
    np.testing.assert_allclose(
        np.asarray(out),
        logits(model, images),
        atol=0.05 * np.abs(logits(model, images)).max(),
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"width": 0}, "width must be > 0"),
        ({"width": -1.0}, "width must be > 0"),
        ({"num_classes": 0}, "num_classes must be >= 1"),
        ({"stride": "medium"}, "stride must be one of"),
        ({"dropout": 1.0}, "dropout must be in"),
        ({"initializer": "not_an_initializer"}, "not_an_initializer"),
        ({"normalization": "layer"}, "normalization must be one of"),
    ],
)
def test_bad_arguments(kwargs, match):
    kwargs = {"num_classes": 10, "width": TINY, **kwargs}
    with pytest.raises(ValueError, match=match):
        of.overfeat_fast(**kwargs)


def test_bad_images():
    model = of.overfeat_accurate(3, width=TINY)
    with pytest.raises(ValueError, match="at least 221x221"):
        model(np.zeros((1, 220, 300, 3), np.float32))
    with pytest.raises(ValueError, match=r"at least 221x221.*\(1, 300, 100, 3\)"):
        of.dense(model, "fine")(np.zeros((1, 300, 100, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[batch, height, width, 3\].*4\)"):
        model(np.zeros((1, 230, 230, 4), np.float32))
    with pytest.raises(ValueError, match=r"\[batch, height, width, 3\]"):
        model(np.zeros((230, 230, 3), np.float32))
    with pytest.raises(ValueError, match="dtype=uint8"):
        model(np.zeros((1, 230, 230, 3), np.uint8))
    with pytest.raises(TypeError, match="images of type str"):
        model("cat.jpg")
    with pytest.raises(ValueError, match="stride must be one of"):
        of.dense(model, "finest")
    with pytest.raises(TypeError, match="OverFeat model"):
        of.dense(keras.Sequential([keras.layers.Dense(2)]), "fine")


def test_a_model_knows_its_task_and_labels(tmp_path):
    model = of.overfeat_fast(3, width=TINY)
    assert model.class_names == ("0", "1", "2") and model.task == "classify"
    assert of.with_regressor(model).task == "localize"
    detector = of.with_background(model)
    assert detector.task == "detect"
    assert detector.class_names == ("0", "1", "2", "background")
    path = str(tmp_path / "detector.keras")
    detector.save(path)
    loaded = of.load_model(path)
    assert (loaded.task, loaded.class_names) == (detector.task, detector.class_names)
