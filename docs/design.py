"""Draws docs/design.png, docs/design.md's picture of the data flow: one network, run
densely over scales, feeding the three tasks and the exports.

    python docs/design.py
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

SHARED, HEAD, GRAPH, OUT = "#dbe9f6", "#fde8c8", "#e3f1dc", "#eeeeee"

# (x, y, width, height, text, module, colour): the blocks, in axis units.
BLOCKS = {
    "image": (0.2, 3.1, 1.6, 1.1, "image\nany size", "", OUT),
    "scales": (
        2.3,
        2.85,
        2.0,
        1.6,
        "6 scales\n× 2 flips\n(shorter side\n256 … 482 px)",
        "inference.py",
        SHARED,
    ),
    "features": (
        4.8,
        2.35,
        2.3,
        2.6,
        "layers 1–5\nconv1 … pool5\n\none dense pass\nper scale;\n"
        "fine stride:\npooled at every\noffset",
        "models.py",
        SHARED,
    ),
    "classifier": (
        7.7,
        5.0,
        2.5,
        1.15,
        "classifier fc6–fc8\n(convolutions)\nclass map [h, w, C]",
        "models.py",
        HEAD,
    ),
    "regressor": (
        7.7,
        3.1,
        2.5,
        1.15,
        "regressor 4096-1024-4\nbox map [h, w, 4]\n(window codes)",
        "with_regressor",
        HEAD,
    ),
    "background": (
        7.7,
        1.2,
        2.5,
        1.15,
        "classifier + background\nclass, and regressor\n(a detector)",
        "with_background",
        HEAD,
    ),
    "classify": (
        10.8,
        5.0,
        2.9,
        1.15,
        "max over cells, mean over\nscales and flips\n→ top 5 classes",
        "inference.Classifier",
        GRAPH,
    ),
    "localize": (
        10.8,
        3.1,
        2.9,
        1.15,
        "boxes of the top-k classes\nat every cell → greedy\nmerge (DIoU, XLA)",
        "localizer.Localizer",
        GRAPH,
    ),
    "detect": (
        10.8,
        1.2,
        2.9,
        1.15,
        "every class's boxes\n→ greedy merge per class\n→ score threshold",
        "detector.Detector",
        GRAPH,
    ),
    "exports": (
        14.3,
        2.6,
        2.2,
        2.3,
        "SavedModel\n(TF Serving)\n\nTFLite\n(LiteRT, int8)",
        "export/",
        OUT,
    ),
}
ARROWS = [
    ("image", "scales"),
    ("scales", "features"),
    ("features", "classifier"),
    ("features", "regressor"),
    ("features", "background"),
    ("classifier", "classify"),
    ("classifier", "localize"),
    ("regressor", "localize"),
    ("background", "detect"),
    ("classify", "exports"),
    ("localize", "exports"),
    ("detect", "exports"),
]


def _anchor(name, side):
    x, y, w, h, *_ = BLOCKS[name]
    return (x + w, y + h / 2) if side == "right" else (x, y + h / 2)


def main(path=os.path.join(os.path.dirname(__file__), "design.png")):
    figure, ax = plt.subplots(figsize=(13.5, 5.4), dpi=110)
    for x, y, w, h, text, module, colour in BLOCKS.values():
        ax.add_patch(
            FancyBboxPatch(
                (x, y), w, h, boxstyle="round,pad=0.05", fc=colour, ec="#555555"
            )
        )
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)
        ax.text(
            x + w / 2,
            y - 0.18,
            module,
            ha="center",
            va="top",
            fontsize=7.5,
            color="#666666",
            family="monospace",
        )
    for start, end in ARROWS:
        ax.add_patch(
            FancyArrowPatch(
                _anchor(start, "right"),
                _anchor(end, "left"),
                arrowstyle="-|>",
                mutation_scale=12,
                color="#444444",
                lw=1.1,
            )
        )
    ax.text(
        5.95, 5.55, "shared weights, one set", ha="center", fontsize=9, style="italic"
    )
    ax.text(
        12.25,
        6.55,
        "one tf.function graph per task (fixed input signature)",
        ha="center",
        fontsize=9,
        style="italic",
    )
    ax.set_xlim(0, 16.7)
    ax.set_ylim(0.6, 6.8)
    ax.axis("off")
    figure.tight_layout()
    figure.savefig(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
