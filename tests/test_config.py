"""Configs: the bundled recipes, the paper's defaults, strict loading."""

import dataclasses
import re
import typing
from pathlib import Path

import pytest
import yaml

from overfeat_tf import architectures
from overfeat_tf.config import (
    DataConfig,
    DetectConfig,
    ExperimentConfig,
    LocalizeConfig,
    ModelConfig,
    TrainConfig,
    bundled_recipes,
    config_to_dict,
    load_config,
    save_config,
)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
RECIPES = sorted(path.stem for path in CONFIGS.glob("*.yaml"))

# Sermanet et al. (2014), section 3.1.
PAPER = [
    ("model", "width", 1.0),
    ("model", "dropout", 0.5),
    ("data", "smallest_side", 256),
    ("train", "batch_size", 128),
    ("train", "epochs", 90),
    ("train", "learning_rate", 5e-2),
    ("train", "momentum", 0.6),
    ("train", "weight_decay", 1e-5),
    ("train", "lr_decay_epochs", (30, 50, 60, 70, 80)),
    ("train", "lr_decay_factor", 0.5),
]


def write(tmp_path, text, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_recipes_are_bundled():
    assert RECIPES == bundled_recipes()
    expected = {"paper_accurate", "paper_fast", "shapes_accurate", "shapes_fast"}
    assert expected | {"tiny"} <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_loads_by_name_and_path(name):
    config = load_config(name)
    assert isinstance(config, ExperimentConfig)
    assert load_config(CONFIGS / f"{name}.yaml") == config
    assert load_config(str(CONFIGS / f"{name}.yaml")) == config


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_opens_with_its_comment_block(name):
    text = (CONFIGS / f"{name}.yaml").read_text(encoding="utf-8")
    header = text.split("\n\n")[0]
    assert all(line.startswith("#") for line in header.splitlines())
    for label in ("Reproduces:", "Expected time:", "Expected metric:"):
        assert label in header
    assert f"overfeat train --config configs/{name}.yaml" in header
    assert yaml.safe_load(text)["seed"] == 0


@pytest.mark.parametrize("section, field, value", PAPER)
def test_defaults_are_the_papers(section, field, value):
    assert getattr(getattr(ExperimentConfig(), section), field) == value


@pytest.mark.parametrize("network", ["accurate", "fast"])
def test_paper_recipes_are_the_defaults_on_imagenet(network):
    config = load_config(f"paper_{network}")
    default = ExperimentConfig()
    expected = dataclasses.replace(
        default,
        output_dir=f"runs/paper_{network}",
        model=dataclasses.replace(default.model, network=network),
        data=dataclasses.replace(
            default.data, source="imagenet2012", test_split="validation"
        ),
        train=dataclasses.replace(default.train, strategy="mirrored"),
    )
    assert config == expected
    assert config.seed == 0


def test_effective_learning_rate():
    train = TrainConfig(batch_size=512, learning_rate=0.05)
    assert train.effective_learning_rate == 0.05
    linear = dataclasses.replace(train, lr_scaling="linear")
    assert linear.effective_learning_rate == pytest.approx(0.2)


def test_overrides_build_new_configs():
    base = load_config("tiny")
    config = load_config(
        "tiny",
        [
            "train.epochs=3",
            "data.data_dir=null",
            "data.data_dir=/tmp/tfds",
            "train.lr_decay_epochs=[1, 2]",
            "train.weight_decay=1e-4",  # a string to PyYAML
            "train.learning_rate=1",  # int for a float field
            "model={width: 0.5}",  # merged into the section
            "seed=7",
        ],
    )
    assert config.train.epochs == 3
    assert config.data.data_dir == "/tmp/tfds"
    assert config.train.lr_decay_epochs == (1, 2)
    assert config.train.weight_decay == 1e-4
    assert isinstance(config.train.learning_rate, float)
    assert config.model == dataclasses.replace(base.model, width=0.5)
    assert config.seed == 7
    assert load_config("tiny") == base
    assert base.train.epochs == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.train.epochs = 3


def test_null_for_optional_field():
    config = load_config("tiny", ["train.steps_per_epoch=null"])
    assert config.train.steps_per_epoch is None


@pytest.mark.parametrize("name", RECIPES)
def test_save_load_round_trip(tmp_path, name):
    config = load_config(name, ["data.data_dir=/data", "train.lr_scaling=linear"])
    path = tmp_path / "run" / "config.yaml"
    save_config(config, path)
    assert load_config(path) == config
    assert yaml.safe_load(path.read_text()) == config_to_dict(config)


def test_config_to_dict_is_plain():
    data = config_to_dict(ExperimentConfig())
    assert data["train"]["lr_decay_epochs"] == [30, 50, 60, 70, 80]
    assert set(data) == {
        "seed",
        "output_dir",
        "model",
        "data",
        "train",
        "task",
        "localize",
        "detect",
    }
    assert data["localize"]["scale_range"] == [1.0, 1.6]


@pytest.mark.parametrize(
    "override, message",
    [
        ("task=segment", "task must be one of ['classify', 'localize', 'detect']"),
        (
            "localize.scale_range=[2, 1]",
            "two factors [low, high] with 1 <= low <= high",
        ),
        ("localize.scale_range=[1]", "two factors"),
        ("localize.min_overlap=0", "min_overlap must be in (0, 1]"),
        ("localize.top_k_classes=0", "top_k_classes must be >= 1"),
        ("localize.image_size=200", "localize.image_size must be >= the window"),
        ("localize.regressor=both", "regressor must be one of ['single', 'per_class']"),
        (
            "detect.negative_overlap=0.7",
            "negative_overlap must be in [0, positive_overlap]",
        ),
        ("detect.scale_range=[0, 1]", "two factors [low, high] with 0 < low <= high"),
        ("detect.mining=bootstrap", "mining must be one of ['hard', 'random']"),
        ("detect.negatives_per_image=-1", "negatives_per_image must be >= 0"),
        ("detect.image_size=100", "detect.image_size must be >= the window"),
    ],
)
def test_task_settings_are_checked(override, message):
    with pytest.raises((ValueError, TypeError)) as error:
        load_config("shapes_fast_localize", [override])
    assert message in str(error.value) and "shapes_fast_localize.yaml" in str(
        error.value
    )


def test_empty_file_is_the_defaults(tmp_path):
    assert load_config(write(tmp_path, "# nothing\n")) == ExperimentConfig()


@pytest.mark.parametrize("network", ["accurate", "fast"])
def test_smallest_side_at_least_the_window(tmp_path, network):
    spec = {"accurate": architectures.ACCURATE, "fast": architectures.FAST}[network]
    window = spec.geometry.window
    text = f"model: {{network: {network}}}\ndata: {{smallest_side: {window}}}\n"
    assert load_config(write(tmp_path, text)).data.smallest_side == window
    text = text.replace(str(window), str(window - 1))
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match="data.smallest_side") as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and f"({window} px)" in message


# A YAML recipe, the error it raises and fragments of its message (besides
# the file's path, which every message names).
FILE_ERRORS = [
    (
        "seeds: 1\n",
        ValueError,
        ["'seeds'", "Valid keys at the top level", "'output_dir'"],
    ),
    (
        "train:\n  batchsize: 64\n",
        ValueError,
        ["'train.batchsize'", "Valid keys at train", "'batch_size'"],
    ),
    ("model:\n  widht: 1\n", ValueError, ["'model.widht'", "'width'"]),
    ("train:\n  epochs: ten\n", TypeError, ["train.epochs must be int", "'ten'"]),
    ("train:\n  epochs: true\n", TypeError, ["train.epochs must be int", "bool"]),
    ("train:\n  epochs: 3.0\n", TypeError, ["train.epochs must be int", "float"]),
    ("train:\n  epochs: null\n", TypeError, ["train.epochs must be int", "None"]),
    ("model:\n  width: yes\n", TypeError, ["model.width must be float", "bool"]),
    (
        "train:\n  steps_per_epoch: 1.5\n",
        TypeError,
        ["train.steps_per_epoch must be int or None", "1.5"],
    ),
    (
        "train:\n  lr_decay_epochs: [30, x]\n",
        TypeError,
        ["train.lr_decay_epochs[1] must be int", "'x'"],
    ),
    (
        "train:\n  lr_decay_epochs: 30\n",
        TypeError,
        ["train.lr_decay_epochs must be a list of int"],
    ),
    ("train: 3\n", TypeError, ["train must be a mapping"]),
    ("[1, 2]\n", TypeError, ["the top level must be a mapping"]),
    (
        "train:\n  strategy: gpu\n",
        TypeError,
        ["train.strategy must be one of", "'mirrored'", "'gpu'"],
    ),
    (
        "model:\n  network: Fast\n",
        TypeError,
        ["model.network must be one of ['fast', 'accurate']", "'Fast'"],
    ),
    (
        "train:\n  learning_rate: -0.1\n",
        ValueError,
        ["at train", "learning_rate must be > 0", "learning_rate=-0.1"],
    ),
    (
        "train:\n  lr_decay_epochs: [30, 30]\n",
        ValueError,
        ["at train", "lr_decay_epochs must be strictly increasing", "(30, 30)"],
    ),
    (
        "train:\n  lr_decay_epochs: [0, 30]\n",
        ValueError,
        ["at train", "lr_decay_epochs", "(0, 30)"],
    ),
    (
        "data:\n  smallest_side: 200\n",
        ValueError,
        ["data.smallest_side must be >=", "data.smallest_side=200"],
    ),
    ("train: [\n", ValueError, ["is not valid YAML"]),
]


@pytest.mark.parametrize("text, error, fragments", FILE_ERRORS)
def test_file_errors_name_file_and_key(tmp_path, text, error, fragments):
    path = write(tmp_path, text)
    with pytest.raises(error) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


OVERRIDE_ERRORS = [
    ("train.epochs", ValueError, ["must be 'dotted.key=value'"]),
    ("=3", ValueError, ["must be 'dotted.key=value'"]),
    ("train..epochs=3", ValueError, ["must be 'dotted.key=value'"]),
    ("train.lr_decay_epochs=[1", ValueError, ["must be valid YAML"]),
    ("train.batchsize=3", ValueError, ["'train.batchsize'", "'batch_size'"]),
    ("trian.epochs=3", ValueError, ["'trian' is not one", "'train'"]),
    ("train.epochs.max=3", ValueError, ["'train.epochs' is not one"]),
    ("train.epochs=true", TypeError, ["train.epochs must be int"]),
    ("train.momentum=1", ValueError, ["momentum must be in [0, 1)"]),
]


@pytest.mark.parametrize("override, error, fragments", OVERRIDE_ERRORS)
def test_override_errors_name_the_override(override, error, fragments):
    with pytest.raises(error) as info:
        load_config("tiny", ["train.epochs=4", override])
    message = str(info.value)
    assert "tiny.yaml" in message and repr(override) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("name", ["nope", "configs/nope.yaml", "no/such/dir.yaml"])
def test_unknown_recipe_lists_the_bundled_ones(name):
    with pytest.raises(FileNotFoundError) as info:
        load_config(name)
    message = str(info.value)
    assert repr(name) in message
    for recipe in RECIPES:
        assert recipe in message


# A section, arguments that break one of its rules, and the rule's message.
RULES = [
    (ModelConfig, {"width": 0.0}, "width must be > 0"),
    (ModelConfig, {"dropout": 1.0}, "dropout must be in [0, 1)"),
    (ModelConfig, {"network": "medium"}, "network must be one of"),
    (DataConfig, {"smallest_side": 0}, "smallest_side must be >= 1"),
    (DataConfig, {"crops_per_image": 0}, "crops_per_image must be >= 1"),
    (DataConfig, {"shuffle_buffer": 0}, "shuffle_buffer must be >= 1"),
    (DataConfig, {"on_bad": "ignore"}, "on_bad must be one of"),
    (TrainConfig, {"batch_size": 0}, "batch_size must be >= 1"),
    (TrainConfig, {"epochs": 0}, "epochs must be >= 1"),
    (TrainConfig, {"learning_rate": 0.0}, "learning_rate must be > 0"),
    (TrainConfig, {"momentum": 1.0}, "momentum must be in [0, 1)"),
    (TrainConfig, {"weight_decay": -1e-5}, "weight_decay must be >= 0"),
    (TrainConfig, {"lr_decay_epochs": (5, 3)}, "lr_decay_epochs must be"),
    (TrainConfig, {"lr_decay_factor": 0.0}, "lr_decay_factor must be in (0, 1]"),
    (TrainConfig, {"lr_decay_factor": 1.5}, "lr_decay_factor must be in (0, 1]"),
    (TrainConfig, {"lr_scaling": "sqrt"}, "lr_scaling must be one of"),
    (TrainConfig, {"reference_batch_size": 0}, "reference_batch_size must be >= 1"),
    (TrainConfig, {"steps_per_epoch": 0}, "steps_per_epoch must be None or >= 1"),
    (TrainConfig, {"validation_steps": 0}, "validation_steps must be None or >= 1"),
    (
        TrainConfig,
        {"checkpoint_every_steps": 0},
        "checkpoint_every_steps must be None or >= 1",
    ),
    (TrainConfig, {"strategy": "horovod"}, "strategy must be one of"),
    (TrainConfig, {"mixed_precision": "float16"}, "mixed_precision must be one of"),
    (TrainConfig, {"histogram_freq": -1}, "histogram_freq must be >= 0"),
    (TrainConfig, {"image_summaries": -1}, "image_summaries must be >= 0"),
    # Issue 18, item 7.
    (ModelConfig, {"width": float("inf")}, "width must be a finite number > 0"),
    (ModelConfig, {"initializer": "nope"}, "initializer must be one of"),
    (TrainConfig, {"warmup_epochs": float("inf")}, "warmup_epochs must be a finite"),
    (LocalizeConfig, {"merge_threshold": 2.0}, "merge_threshold must be in [0, 2)"),
    (DetectConfig, {"merge_threshold": -1.0}, "merge_threshold must be in [0, 2)"),
    (DetectConfig, {"score_threshold": -1.0}, "score_threshold must be >= 0"),
    (DetectConfig, {"min_window_score": 1.5}, "min_window_score must be in [0, 1]"),
    (ExperimentConfig, {"seed": 2**31}, "seed must be in [0, 2**31)"),
]


@pytest.mark.parametrize("cls, kwargs, rule", RULES)
def test_direct_construction_is_checked(cls, kwargs, rule):
    ((name, value),) = kwargs.items()
    expected = f"{cls.__name__}.{rule}"
    with pytest.raises(ValueError, match=re.escape(expected)) as info:
        cls(**kwargs)
    assert f"Received: {name}={value!r}" in str(info.value)


# Issue 18, item 4: an override's value is read by the type of its key,
# never by YAML's guessing (`#` starts a comment, `1:30` is 90, `yes` true).
@pytest.mark.parametrize(
    "override, key, value",
    [
        ("output_dir=runs/exp #2", "output_dir", "runs/exp #2"),
        ("output_dir=2024", "output_dir", "2024"),
        ("output_dir=1e5", "output_dir", "1e5"),
        ("data.source= /data/a b ", "data.source", " /data/a b "),
        ("data.data_dir=1:30", "data.data_dir", "1:30"),
        ("data.data_dir=null", "data.data_dir", None),
        ("data.data_dir=", "data.data_dir", None),
        ("detect.backbone=null", "detect.backbone", None),
        ("detect.backbone=~", "detect.backbone", None),
        ("train.steps_per_epoch=null", "train.steps_per_epoch", None),
        ("train.steps_per_epoch=7", "train.steps_per_epoch", 7),
        ("train.epochs=010", "train.epochs", 10),
        ("train.learning_rate=3e-4", "train.learning_rate", 3e-4),
        ("train.weight_decay=1.0e-5", "train.weight_decay", 1e-5),
        ("train.learning_rate=2", "train.learning_rate", 2.0),
        ("train.jit_compile=false", "train.jit_compile", False),
        ("train.jit_compile=True", "train.jit_compile", True),
        ("data.scale_range=[231, 300]", "data.scale_range", (231, 300)),
        ("data.scale_range=null", "data.scale_range", None),
        ("model={width: 0.5}", "model.width", 0.5),
        ("task=detect", "task", "detect"),
    ],
)
def test_override_is_read_by_the_type_of_its_key(tmp_path, override, key, value):
    config = load_config("tiny", [override])
    read = config
    for part in key.split("."):
        read = getattr(read, part)
    assert read == value and type(read) is type(value)
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


@pytest.mark.parametrize(
    "override, fragments",
    [
        ("train.epochs=1:30", ["train.epochs must be int", "'1:30'"]),
        ("train.epochs=0x10", ["train.epochs must be int", "'0x10'"]),
        ("train.epochs=1_000", ["train.epochs must be int", "'1_000'"]),
        ("train.epochs=3.0", ["train.epochs must be int", "'3.0'"]),
        ("train.steps_per_epoch=1:30", ["steps_per_epoch must be int or None"]),
        ("train.learning_rate=1:30", ["learning_rate must be float", "'1:30'"]),
        ("train.learning_rate=1_0", ["learning_rate must be float"]),
        ("train.jit_compile=yes", ["jit_compile must be bool", "'yes'"]),
        ("train.jit_compile=off", ["jit_compile must be bool", "'off'"]),
        ("train.jit_compile=1", ["jit_compile must be bool", "'1'"]),
        ("data.cache=on", ["data.cache must be bool"]),
        ("train.lr_decay_epochs=[1, 1:30]", ["lr_decay_epochs[1] must be int"]),
        (
            "data.scale_range=[231, 0x1ff]",
            ["scale_range must be a list of int or None", "'0x1ff'"],
        ),
        ("model={width: 1:30}", ["model.width must be float"]),
    ],
)
def test_override_numbers_and_bools_must_be_written_as_such(override, fragments):
    with pytest.raises(TypeError) as info:
        load_config("tiny", [override])
    message = str(info.value)
    assert "tiny.yaml" in message and repr(override) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("train:\n  epochs: 1:30\n", ["train.epochs must be int", "'1:30'"]),
        ("train:\n  lr_decay_epochs: [10, 1:30]\n", ["lr_decay_epochs[1]"]),
        ("seed: 0o17\n", ["seed must be int", "'0o17'"]),
    ],
)
def test_file_numbers_are_not_guessed(tmp_path, text, fragments):
    path = write(tmp_path, text)
    with pytest.raises(TypeError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_file_reads_yaml_1_2_numbers(tmp_path):
    text = "seed: 010\ntrain:\n  learning_rate: 3e-4\n  weight_decay: 1.0e-5\n"
    config = load_config(write(tmp_path, text))
    assert config.seed == 10
    assert config.train.learning_rate == 3e-4
    assert config.train.weight_decay == 1e-5


# Issue 18, item 7: the strict loader is strict.
@pytest.mark.parametrize(
    "text, key, lines",
    [
        ("seed: 1\nseed: 2\n", "'seed'", "lines 1 and 2"),
        (
            "train:\n  epochs: 3\n  batch_size: 8\n  epochs: 4\n",
            "'train.epochs'",
            "2 and 4",
        ),
        ("train: {epochs: 3, epochs: 4}\n", "'train.epochs'", "line 1"),
        ("model:\n  width: 1\nmodel:\n  dropout: 0\n", "'model'", "1 and 3"),
    ],
)
def test_duplicate_keys_are_errors(tmp_path, text, key, lines):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and key in message and "given twice" in message
    assert lines in message


def test_duplicate_keys_in_an_override_are_errors():
    override = "train={epochs: 3, epochs: 4}"
    with pytest.raises(ValueError, match="'train.epochs' is given twice"):
        load_config("tiny", [override])


def _float_fields():
    """(section, field, a non-finite value as YAML) for every float field."""
    for section in ("model", "data", "train", "localize", "detect"):
        cls = typing.get_type_hints(ExperimentConfig)[section]
        for name, hint in typing.get_type_hints(cls).items():
            if hint is float or hint == float | None:
                for value in (".inf", "-.inf", ".nan"):
                    yield section, name, value
            elif typing.get_origin(hint) is tuple and typing.get_args(hint)[0] is float:
                yield section, name, "[1.0, .inf]"
                yield section, name, "[.nan, 1.5]"


FLOAT_FIELDS = list(_float_fields())


def test_every_float_field_is_covered():
    names = {(section, name) for section, name, _ in FLOAT_FIELDS}
    for key in ("width", "learning_rate", "weight_decay", "warmup_epochs"):
        assert any(name == key for _, name in names)
    assert ("detect", "score_threshold") in names
    assert ("localize", "scale_range") in names


@pytest.mark.parametrize("section, name, value", FLOAT_FIELDS)
def test_non_finite_floats_are_refused(tmp_path, section, name, value):
    path = write(tmp_path, f"{section}:\n  {name}: {value}\n")
    with pytest.raises(ValueError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and f"{name} must be" in message
    assert "finite" in message
    override = f"{section}.{name}={value}"
    with pytest.raises(ValueError, match=f"{name} must be"):
        load_config("tiny", [override])


# A setting out of its range, and the range the message must state.
RANGES = [
    ("localize.merge_threshold=-5", "merge_threshold must be in [0, 2)"),
    ("localize.merge_threshold=2", "merge_threshold must be in [0, 2)"),
    (
        "localize.merge_threshold=.nan",
        "merge_threshold must be a finite number in [0, 2)",
    ),
    ("detect.merge_threshold=2", "merge_threshold must be in [0, 2)"),
    ("detect.merge_threshold=-0.1", "merge_threshold must be in [0, 2)"),
    ("detect.score_threshold=-5", "score_threshold must be >= 0"),
    ("detect.score_threshold=.nan", "score_threshold must be a finite number >= 0"),
    ("detect.score_threshold=.inf", "score_threshold must be a finite number >= 0"),
    ("detect.min_window_score=2", "min_window_score must be in [0, 1]"),
    ("detect.min_window_score=-5", "min_window_score must be in [0, 1]"),
    (
        "detect.min_window_score=.nan",
        "min_window_score must be a finite number in [0, 1]",
    ),
    (
        "detect={merge_score: mean, score_threshold: 2}",
        "score_threshold must be in [0, 1] with merge_score='mean'",
    ),
    ("seed=-1", "seed must be in [0, 2**31)"),
    ("seed=2147483648", "seed must be in [0, 2**31)"),
    ("model.initializer=nope", "initializer must be one of ['he_normal', 'paper'] or"),
    ("model.initializer=constant", "keras.initializers.get"),
    ("model.class_initializer=nope", "class_initializer must be one of"),
]


@pytest.mark.parametrize("override, rule", RANGES)
def test_settings_are_range_checked_at_load(override, rule):
    with pytest.raises(ValueError) as info:
        load_config("tiny", [override])
    message = str(info.value)
    assert "tiny.yaml" in message and rule in message and "Received: " in message


@pytest.mark.parametrize(
    "override",
    [
        "detect.score_threshold=2",  # a sum of probabilities
        "detect.merge_threshold=0",
        "detect.min_window_score=1",
        "localize.merge_threshold=1.99",
        "seed=2147483647",
        "model.initializer=paper",
        "model.initializer=glorot_uniform",
        "model.initializer=LecunNormal",
    ],
)
def test_settings_in_range_load(override):
    load_config("tiny", [override])
