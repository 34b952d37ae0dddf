"""OverFeat (Sermanet et al., ICLR 2014) for Keras 3 and TensorFlow.

`import overfeat_tf as of`; the public names are re-exported here.
"""

from overfeat_tf.architectures import (
    ACCURATE,
    FAST,
    ConvLayer,
    FullLayer,
    Geometry,
    OverFeatSpec,
    multiply_adds,
)
from overfeat_tf.derived import (
    dense,
    feature_extractor,
    fold_normalization,
    with_background,
    with_regressor,
)
from overfeat_tf.models import OverFeat, overfeat_accurate, overfeat_fast
from overfeat_tf.saving import load_model

__version__ = "0.1.0"

__all__ = [
    "ACCURATE",
    "FAST",
    "ConvLayer",
    "FullLayer",
    "Geometry",
    "OverFeat",
    "OverFeatSpec",
    "dense",
    "feature_extractor",
    "fold_normalization",
    "load_model",
    "multiply_adds",
    "overfeat_accurate",
    "overfeat_fast",
    "with_background",
    "with_regressor",
]
