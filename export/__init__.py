"""Exporters (installed as `overfeat_tf.export`): SavedModel for TF Serving
and quantized TFLite, both wrapping the multi-scale inference graph.

The exporters arrive with the export issue; this package is the place they
live, mapped by setup.py so that no top-level `export` module is installed.
"""
