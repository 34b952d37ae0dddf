"""The bundled YAML recipes, installed as `overfeat_tf.configs`."""
