"""`overfeat quickstart --tiny`: every promised file, figures that are
numbers, a second run that reuses what is there, and the time-left estimate."""

import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from overfeat_tf import cli, quickstart
from overfeat_tf.visualize import PREDICTED, TRUTH

# Minutes: run with --run-slow (see conftest.py).
pytestmark = pytest.mark.slow

PROMISED = [
    "summary.md",
    "summary.json",
    "curves.png",
    "classify/model.keras",
    "localize/model.keras",
    "detect/model.keras",
    "classify/history.csv",
    "evaluation/classify.json",
    "evaluation/localize.json",
    "evaluation/detect.json",
    "export/saved_model/overfeat/1/saved_model.pb",
    "export/overfeat_pipeline_int8.tflite",
    "export/overfeat_pipeline_int8.json",
    "pictures/localize_0.png",
    "pictures/detect_0.png",
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tfds_dir):
    out = str(tmp_path_factory.mktemp("quickstart") / "qs")
    lines = []
    summary = quickstart.run(
        out, tiny=True, overrides=[f"data.data_dir={tfds_dir}"], log=lines.append
    )
    return out, summary, lines


def _numbers(value, where=""):
    """Every number in a JSON tree, with its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{where}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{where}/{i}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield where, value


def test_every_promised_file_is_written(finished):
    out, _, lines = finished
    missing = [p for p in PROMISED if not os.path.exists(os.path.join(out, p))]
    assert not missing
    for task in quickstart.TASKS:
        events = os.listdir(os.path.join(out, task, "tensorboard", "train"))
        assert any(name.startswith("events.out.tfevents") for name in events)
    assert [line.split("]")[0] for line in lines if line.startswith("[")] == [
        f"[{i}/8" for i in range(1, 9)
    ]
    assert lines[-1].startswith("quickstart finished in ")


def test_figures_are_numbers(finished):
    out, summary, _ = finished
    with open(os.path.join(out, "summary.json")) as f:
        written = json.load(f)
    assert written == json.loads(json.dumps(summary))
    numbers = dict(_numbers(written))
    assert len(numbers) > 40
    assert all(math.isfinite(v) for v in numbers.values()), numbers
    for task in quickstart.TASKS:
        rows = written["evaluation"][task]
        assert rows and all(row["num_images"] == 2 for row in rows)
        assert written["training"][task]["epochs"] == 1
        assert math.isfinite(written["training"][task]["loss"])
    assert written["export"]["tflite"]["verification"]["images"] == 3
    text = open(os.path.join(out, "summary.md")).read()
    for heading in (
        "## Classification",
        "## Localization",
        "## Detection",
        "## Export",
    ):
        assert heading in text
    assert "| 1 center crop |" in text and "nan" not in text


def test_pictures_show_predicted_and_true_boxes(finished):
    out, summary, _ = finished
    assert {row["task"] for row in summary["pictures"]} == {"localize", "detect"}
    for row in summary["pictures"]:
        pixels = np.asarray(Image.open(row["file"]))
        colours = {tuple(p) for p in pixels.reshape(-1, 3)}
        assert tuple(TRUTH) in colours and row["truth"]
        assert (tuple(PREDICTED) in colours) == bool(row["predicted"])
    curves = Image.open(os.path.join(out, "curves.png"))
    assert curves.size[0] > 2 * curves.size[1]  # three panels side by side


def test_a_second_run_reuses_every_stage(finished, tfds_dir):
    out, summary, _ = finished
    lines = []
    again = quickstart.run(
        out, tiny=True, overrides=[f"data.data_dir={tfds_dir}"], log=lines.append
    )
    reused = [line for line in lines if line.strip().endswith("had written")]
    assert len(reused) == 7  # every stage but the report
    assert again["evaluation"] == summary["evaluation"]
    assert again["training"] == summary["training"]
    # Each stage keeps the time it took when it ran; only the report re-ran.
    assert summary["reused_stages"] == [] and len(summary["stage_seconds"]) == 8
    # Nine values rounded to 0.1 s: at most 0.45 s apart by rounding alone.
    assert sum(summary["stage_seconds"].values()) <= summary["wall_seconds"] + 0.5
    assert again["reused_stages"] == list(summary["stage_seconds"])[:7]
    for name in again["reused_stages"]:
        assert again["stage_seconds"][name] == summary["stage_seconds"][name]
    markdown = open(os.path.join(out, "summary.md")).read()
    assert (
        f"This run took {again['wall_seconds']:.0f} s, reusing 7 finished" in markdown
    )


def test_each_stage_gets_its_own_recipe_and_overrides(tmp_path):
    full = quickstart.configs(str(tmp_path), quickstart.FULL, ["seed=7"])
    assert [full[t].train.epochs for t in quickstart.TASKS] == [7, 4, 1]
    assert [full[t].task for t in quickstart.TASKS] == list(quickstart.TASKS)
    assert full["detect"].detect.backbone == str(tmp_path / "classify")
    assert full["localize"].output_dir == str(tmp_path / "localize")
    assert {full[t].seed for t in quickstart.TASKS} == {7}
    tiny = quickstart.configs(str(tmp_path), quickstart.TINY)
    assert {tiny[t].model.width for t in quickstart.TASKS} == {0.125}


def test_time_left_scales_the_estimates_by_the_speed_so_far():
    now = [0.0]
    lines = []
    progress = quickstart._Progress(
        ["a", "b", "c"], {"a": 10, "b": 20, "c": 30}, lines.append, clock=lambda: now[0]
    )
    progress.start("a")
    now[0] = 20.0  # twice the estimate
    progress.finish("a", reused=False)
    progress.start("b")
    progress.finish("b", reused=True)  # reused: no time, no speed sample
    progress.start("c")
    assert lines[0] == "[1/3] a (0 s in, about 1 min 00 s left)"
    assert lines[1] == "[2/3] b (20 s in, about 1 min 40 s left)"
    assert lines[3] == "[3/3] c (20 s in, about 1 min 00 s left)"


def test_cli_quickstart_errors(tmp_path, capsys):
    args = ["quickstart", "--tiny", "--output", str(tmp_path / "qs")]
    assert cli.main([*args, "train.bogus=1"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("overfeat quickstart: error:") and "bogus" in error
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["quickstart", "--help"])
    assert exit_info.value.code == 0
    assert "overfeat quickstart" in capsys.readouterr().out
