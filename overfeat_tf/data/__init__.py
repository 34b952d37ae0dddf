"""Data: the built-in data set, readers for tfds and on-disk formats, and
the tf.data pipelines. Importing it registers the `overfeat_shapes` builder.
"""

from overfeat_tf.data.builtin import OverfeatShapes, ShapesConfig, shapes_config
from overfeat_tf.data.shapes import CLASS_NAMES

__all__ = ["CLASS_NAMES", "OverfeatShapes", "ShapesConfig", "shapes_config"]
