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
from overfeat_tf.models import (
    OverFeat,
    dense,
    feature_extractor,
    fold_normalization,
    load_model,
    overfeat_accurate,
    overfeat_fast,
    with_background,
    with_regressor,
)

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
