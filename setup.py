"""overfeat-tf: OverFeat (Sermanet et al., ICLR 2014) for Keras 3 / TensorFlow."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent

TEST = [
    "pytest>=8",
    "hypothesis>=6.100",
    "jax>=0.4.36",
    "pycocotools>=2.0.7",
    "keras-cv==0.9.0",
    "tensorflow-serving-api>=2.20,<2.22",
    "ruff==0.17.6",
]

setup(
    name="overfeat-tf",
    version="0.1.0",
    description=(
        "OverFeat for Keras 3 / TensorFlow: one ConvNet that classifies, "
        "localizes and detects, run densely over many scales."
    ),
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # export/ and configs/ sit at the top of the repository but install as
    # overfeat_tf.export and overfeat_tf.configs, so site-packages gets no
    # module named `export` and `load_config("tiny")` finds the recipes.
    # overfeat_cli, the command line (one module per command), sits outside
    # the package so that `overfeat --help` runs without importing TensorFlow.
    packages=find_packages(include=["overfeat_tf", "overfeat_tf.*", "overfeat_cli"])
    + ["overfeat_tf.export", "overfeat_tf.configs"],
    package_dir={"overfeat_tf.export": "export", "overfeat_tf.configs": "configs"},
    package_data={"overfeat_tf.configs": ["*.yaml"]},
    install_requires=[
        "tensorflow>=2.20,<2.22",
        "keras>=3.10,<4",
        "numpy>=1.26",
        "tensorflow-datasets>=4.9.7",
        "pyyaml>=6",
        # TensorFlow 2.21 no longer brings TensorBoard; tf.summary needs it.
        "tensorboard",
        # Captions of the validation images in TensorBoard.
        "pillow",
        # tfds 4.9 imports it but does not declare it.
        "importlib_resources",
        # The stock TFLite interpreter: exports are verified on it.
        "ai-edge-litert>=2.0",
        # The quickstart's training curves.
        "matplotlib>=3.8",
    ],
    extras_require={
        # jax: the models are also checked on the JAX backend; pycocotools
        # and keras-cv: the COCO metrics are checked against both;
        # hypothesis: the fuzz tests; tensorflow-serving-api: requests to the
        # SavedModel are built with its PredictRequest proto; ruff: CI lints
        # (pinned: its formatting changes between versions).
        "test": TEST,
        "dev": TEST,  # the old name of the same set
    },
    entry_points={"console_scripts": ["overfeat = overfeat_cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
