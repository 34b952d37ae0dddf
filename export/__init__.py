"""Exporters (installed as `overfeat_tf.export`): `saved_model` for TF
Serving and `tflite` for devices, both wrapping the multi-scale inference
graphs of `Classifier`, `Localizer` and `Detector`.

setup.py maps this folder to `overfeat_tf.export`, so that no top-level
`export` module is installed.
"""
