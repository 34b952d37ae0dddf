"""Experiment configs: frozen dataclasses (`schema`, `training`), loaded
strictly from YAML recipes (`loader`).

Configs are never mutated: `load_config` applies "dotted.key=value"
overrides by building new ones, and code that needs a variant uses
`dataclasses.replace`.
"""

from overfeat_tf.config.loader import (
    bundled_recipes,
    config_to_dict,
    load_config,
    save_config,
)
from overfeat_tf.config.schema import (
    DataConfig,
    DetectConfig,
    ExperimentConfig,
    LocalizeConfig,
    ModelConfig,
)
from overfeat_tf.config.training import TrainConfig

__all__ = [
    "DataConfig",
    "DetectConfig",
    "ExperimentConfig",
    "LocalizeConfig",
    "ModelConfig",
    "TrainConfig",
    "bundled_recipes",
    "config_to_dict",
    "load_config",
    "save_config",
]
