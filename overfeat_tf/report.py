"""What a run shows people: boxes drawn on test scenes, training curves, and
the summary of every figure as markdown (used by `overfeat quickstart`)."""

from __future__ import annotations

import math
import os

import numpy as np

from overfeat_tf.evaluation.protocols import results_table
from overfeat_tf.tables import markdown_table
from overfeat_tf.visualize import draw_boxes, save_png

# Columns of the evaluation tables: (row key, header, scale to print).
_TITLES = {
    "classify": "Classification (Table 2 protocols)",
    "localize": "Localization (ILSVRC error: right class and IoU >= 0.5)",
    "detect": "Detection",
}


def pictures(runners: dict, configs: dict, folder: str, count: int) -> list[dict]:
    """Draw `count` test scenes per box task (`runners`: "localize" and
    "detect"): predictions red, captioned "class score", ground truth green.

    Localization draws its best box (the ILSVRC top-1 guess), detection
    every detection. Returns one row per PNG written.
    """
    from overfeat_tf.data import readers

    os.makedirs(folder, exist_ok=True)
    rows = []
    for task, runner in runners.items():
        data = configs[task].data
        dataset = readers.load_detection(
            data.source, data.test_split, data_dir=data.data_dir, on_bad=data.on_bad
        ).dataset
        names = runner.model.class_names
        for i, example in enumerate(dataset.take(count).as_numpy_iterator()):
            out = {k: np.asarray(v) for k, v in runner(example["image"]).items()}
            shown = 1 if task == "localize" else int(out["num_detections"])
            scores = out["scores"][:shown]
            classes = out["classes"][:shown]
            # Enlarged so that the captions stay readable on small scenes.
            zoom = max(1, -(-512 // min(example["image"].shape[:2])))
            picture = draw_boxes(
                example["image"].repeat(zoom, 0).repeat(zoom, 1),
                out["boxes"][:shown] * zoom,
                [f"{names[c]} {s:.2f}" for c, s in zip(classes, scores)],
                truth=example["boxes"] * zoom,
                truth_captions=[names[c] for c in example["labels"]],
            )
            path = os.path.join(folder, f"{task}_{i}.png")
            save_png(picture, path)
            rows.append(
                {
                    "file": path,
                    "task": task,
                    "predicted": [names[c] for c in classes],
                    "truth": [names[c] for c in example["labels"]],
                }
            )
    return rows


def training_curves(histories: dict, path: str) -> None:
    """One panel per run (`histories`: title -> history.csv): every loss
    and validation loss by epoch, written to `path` as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, len(histories), figsize=(5 * len(histories), 3.6))
    for ax, (title, csv) in zip(np.atleast_1d(axes), histories.items()):
        history = read_history(csv)
        epochs = np.asarray(history.get("epoch", []), int) + 1
        losses = [n for n in history if n.endswith("loss") and not n.startswith("val_")]
        for colour, name in enumerate(losses):
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                if key in history:
                    ax.plot(
                        epochs,
                        history[key],
                        style,
                        marker="o",
                        color=f"C{colour}",
                        label=key,
                    )
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set(title=title, xlabel="epoch", ylabel="loss (solid: train, dashed: val)")
        ax.grid(alpha=0.3)
        if history:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_markdown(summary: dict, output_dir: str) -> str:
    """The quickstart's summary (see `quickstart.run`) as markdown."""
    tiny = bool(summary.get("tiny"))
    wall = summary.get("wall_seconds", float("nan"))
    reused = summary.get("reused_stages") or []
    stages = summary.get("stage_seconds", {})
    timing = f"Wall time {wall:.0f} s"
    if reused:
        timing = (
            f"This run took {wall:.0f} s, reusing {len(reused)} finished stages; "
            f"the stages took {sum(stages.values()):.0f} s when they ran"
        )
    lines = [
        "# overfeat quickstart",
        "",
        timing
        + (" (tiny mode: a few steps per stage, figures meaningless)" * tiny)
        + f". TensorBoard: `tensorboard --logdir {output_dir}`.",
        "",
        "Seconds per stage: "
        + ", ".join(f"{name} {seconds:.0f}" for name, seconds in stages.items())
        + ".",
        "",
        "## Training (last epoch)",
        "",
        markdown_table(
            ["run", "epochs", "loss", "val_loss"],
            (
                [task, str(row["epochs"])]
                + [f"{row.get(key, float('nan')):.4g}" for key in ("loss", "val_loss")]
                for task, row in summary.get("training", {}).items()
            ),
        ),
    ]
    for task, rows in summary.get("evaluation", {}).items():
        count = rows[0]["num_images"] if rows else 0
        lines += [
            "",
            f"## {_TITLES[task]}, {count} test images",
            "",
            results_table(task, rows),
        ]
    export = summary.get("export")
    if export:
        tflite = export["tflite"]
        check = tflite["verification"]
        lines += [
            "",
            "## Export",
            "",
            f"- SavedModel for TF Serving: `{export['saved_model']['path']}`; every "
            "signature against the in-process pipeline: "
            + ", ".join(
                f"{row['signature']} {row['classes_equal']:.0%}"
                for row in export["saved_model"]["verification"]
            )
            + " of classes equal.",
            f"- int8 TFLite (the classifier's whole pipeline): `{tflite['path']}`, "
            f"{tflite['mib']:.1f} MiB; top-1 agreement with float32 on LiteRT "
            f"{check['top1_agreement']:.0%} of {check['images']} scenes.",
        ]
    if summary.get("pictures"):
        lines += ["", "## Pictures (predicted red, true green)", ""]
        lines += [
            f"- `{row['file']}`: predicted {', '.join(row['predicted']) or 'nothing'}; "
            f"true {', '.join(row['truth']) or 'nothing'}"
            for row in summary["pictures"]
        ]
        lines += ["", f"Training curves: `{os.path.join(output_dir, 'curves.png')}`."]
    return "\n".join(lines) + "\n"


def read_history(path: str) -> dict:
    """history.csv (Keras's CSVLogger) as {column: [floats]}; {} if none."""
    if not os.path.exists(path):
        return {}
    table = np.genfromtxt(path, delimiter=",", names=True, ndmin=1)
    columns = {
        name: np.atleast_1d(table[name]).astype(float) for name in table.dtype.names
    }
    return {
        name: [float(v) for v in values]
        for name, values in columns.items()
        if not all(math.isnan(v) for v in values)
    }
