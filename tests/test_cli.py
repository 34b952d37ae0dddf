"""The `overfeat` command."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import TINY
from PIL import Image

import overfeat_cli
import overfeat_tf as of
from overfeat_tf import cli
from overfeat_tf.data import shapes
from overfeat_tf.inference import Classifier


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """An untrained tiny classifier of the built-in classes, saved as a run."""
    folder = tmp_path_factory.mktemp("run")
    model = of.overfeat_fast(10, width=TINY, class_names=shapes.CLASS_NAMES)
    model.save(folder / "model.keras")
    return model, folder


def test_describe_accurate_fine(capsys):
    code = cli.main(
        [
            "describe",
            "--network",
            "accurate",
            "--image-size",
            "461x569",
            "--stride",
            "fine",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "window 221 px, coarse stride 36 px, fine stride 12 px" in out
    assert "parameters 144,656,488" in out
    assert "class map 21x30 = 630 windows" in out
    assert "full (dil. 3)" in out


def test_describe_tiny_fast_at_the_window(capsys):
    assert cli.main(["describe", "--network", "fast", "--width", "0.125"]) == 0
    out = capsys.readouterr().out
    assert "window 231 px, coarse stride 32 px, fine stride 16 px" in out
    assert "class map 1x1 = 1 windows" in out


def test_describe_errors(capsys):
    code = cli.main(["describe", "--network", "fast", "--image-size", "200x300"])
    assert code == 2
    assert "at least 231x231" in capsys.readouterr().err
    for bad in (["--image-size", "461"], ["--width", "0"], ["--network", "huge"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["describe", *bad])
        assert exit_info.value.code == 2


@pytest.mark.slow
def test_train_runs_a_recipe_and_resumes(data_dir, tmp_path, capsys):
    args = [
        "train",
        "--config",
        "tiny",
        "--output-dir",
        str(tmp_path),
        f"data.data_dir={data_dir}",
        "train.learning_rate=0.002",
    ]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "top1_error" in out
    # stdout is not a terminal here: a line per epoch, no progress bars.
    assert "3/3 - " in out and not {"\r", "\u2501", "\x1b"} & set(out), out
    assert (tmp_path / "model.keras").exists()
    assert (tmp_path / "config.yaml").exists()
    # Run again: every epoch is done, so it resumes at the end.
    assert cli.main(args) == 0
    assert "already finished its 2 epochs" in capsys.readouterr().out


@pytest.mark.slow
def test_train_resumes_from_the_newest_checkpoint_that_restores(
    data_dir, tmp_path, capsys, caplog
):
    # Epochs of 3 steps: checkpoints ckpt-3, ckpt-6, ... at each epoch's end.
    folder = tmp_path / "checkpoints"
    history = tmp_path / "history.csv"

    def train(epochs, keep_output=False):
        args = ["train", "--config", "tiny", "--output-dir", str(tmp_path)]
        code = cli.main([*args, f"data.data_dir={data_dir}", f"train.epochs={epochs}"])
        if not keep_output:
            capsys.readouterr()
        return code

    def epochs_listed():
        return [int(line.split(",")[0]) for line in history.read_text().split()[1:]]

    assert train(2) == 0
    # A garbage index file: before, the run restarted from epoch 0 (history
    # 0, 1, 0, 1, 2) and exited 0.
    (folder / "checkpoint").write_text("garbage {{{")
    assert train(3) == 0
    assert epochs_listed() == [0, 1, 2]
    assert (folder / "ckpt-9.index").exists()
    assert not (folder / "ckpt-12.index").exists()

    # A truncated latest checkpoint: it is set aside and epoch 3 (step 9)
    # is trained again from ckpt-6; its row is not listed twice.
    data = folder / "ckpt-9.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    caplog.clear()
    assert train(4) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("ckpt-9 is damaged" in w and "from ckpt-6" in w for w in warnings)
    assert (folder / "damaged" / data.name).exists()
    assert epochs_listed() == [0, 1, 2, 3]
    assert (folder / "ckpt-12.index").exists()

    # Nothing restores: an error naming the files, and nothing moved.
    for index in folder.glob("ckpt-*.index"):
        index.write_bytes(b"not an sstable")
    assert train(5, keep_output=True) == 2
    err = capsys.readouterr().err
    assert err.startswith("overfeat train: error: No checkpoint in")
    assert "ckpt-12" in err and "ckpt-6" in err and len(err.splitlines()) == 1
    assert epochs_listed() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", "no_such_recipe"], "shapes_accurate"),
        (["--config", "tiny", "train.batchsize=3"], "train.batchsize"),
        (["--config", "tiny", "train.learning_rate=-1"], "learning_rate must be > 0"),
        (["--config", "tiny", "--strategy", "multi_worker"], "TF_CONFIG"),
        (
            ["--config", "tiny", "--strategy", "multi_worker", "train.loop=fit"],
            "keras-team/keras#20585",
        ),
        (["--config", "tiny", "--worker-hosts", "127.0.0.1:1"], "--task-index"),
        (
            ["--config", "tiny", "--worker-hosts", "a:1,a:b", "--task-index", "0"],
            "'a:b' is not host:port",
        ),
        (
            ["--config", "tiny", "--worker-hosts", "a:1,b:1", "--task-index", "2"],
            "--task-index must be in [0, 2)",
        ),
    ],
)
def test_train_errors_are_one_line(args, message, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cli.main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("overfeat train: error:")


def test_help_of_every_subcommand(capsys):
    for command in ("quickstart", "describe", "train", "evaluate", "predict", "export"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0
        examples = capsys.readouterr().out.split("examples:\n")[1].splitlines()
        commands = [
            line.split()[1] for line in examples if line.startswith("  overfeat")
        ]
        assert commands and set(commands) == {command}  # its own examples only


def test_predict_writes_the_classifier_outputs(saved_model, tmp_path, rng, capsys):
    model, run = saved_model
    folder = tmp_path / "photos"
    folder.mkdir()
    images = {}
    for name, size in (("a.png", (240, 260)), ("b.BMP", (300, 250))):
        pixels = rng.integers(0, 256, (*size, 3), np.uint8)
        Image.fromarray(pixels).save(folder / name)  # lossless: pixels as is
        images[str(folder / name)] = pixels
    (folder / "notes.txt").write_text("not an image")
    output = tmp_path / "out.json"
    args = ["predict", "--model", str(run), str(folder), "--scales", "1,2"]
    assert cli.main([*args, "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    predictions = json.loads(output.read_text())
    assert list(predictions) == sorted(images)
    classifier = Classifier(model, scales=(256, 294))
    for path, pixels in images.items():
        want = classifier(pixels)
        ids = want["top_k_ids"].numpy()
        assert [row[0] for row in predictions[path]] == ids.tolist()
        assert [row[1] for row in predictions[path]] == [
            shapes.CLASS_NAMES[i] for i in ids
        ]
        np.testing.assert_allclose(
            [row[2] for row in predictions[path]],
            want["top_k_probabilities"],
            rtol=1e-5,
        )
        assert path in printed and shapes.CLASS_NAMES[ids[0]] in printed


def test_predict_errors_name_the_file(saved_model, tmp_path, capsys):
    _, run = saved_model
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    thin = tmp_path / "thin.png"
    Image.fromarray(np.zeros((1, 1600, 3), np.uint8)).save(thin)
    cases = [
        (["--model", str(run), str(thin)], f"Cannot run on {thin}: assertion failed"),
        (["--model", str(run), str(thin)], "max_aspect_ratio=10 "),
        (["--model", str(run), str(broken)], "Cannot decode image " + str(broken)),
        (["--model", str(run), str(tmp_path / "nope.png")], "nope.png"),
        (["--model", str(tmp_path / "none.keras"), str(broken)], "none.keras"),
        (
            ["--model", str(run), str(broken), "--scale-sizes", "100"],
            "at least the window",
        ),
    ]
    for args, message in cases:
        assert cli.main(["predict", *args, "--output", str(tmp_path / "p.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("overfeat predict: error:") and message in err
    with pytest.raises(SystemExit):
        cli.main(["predict", "--model", str(run), "x.png", "--scales", "1,a"])


def test_unwritable_outputs_and_bad_numbers_are_one_line(saved_model, tmp_path, capsys):
    # Before: tracebacks (NotADirectoryError, OSError, IsADirectoryError,
    # OverflowError), the train ones after the data had loaded.
    _, run = saved_model
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((240, 240, 3), np.uint8)).save(image)
    train = ["train", "--config", "tiny", "--output-dir"]
    predict = ["predict", "--model", str(run), str(image)]
    cases = [
        ([*train, str(a_file / "run")], "cannot write there (Not a directory)"),
        ([*train, str(tmp_path / ("x" * 300))], "(File name too long)"),
        ([*predict, "--output", str(tmp_path)], f"--output {tmp_path} is a folder"),
        ([*predict, "--draw", str(a_file)], f"--draw {a_file}: cannot write"),
        (["quickstart", "--output", str(a_file)], f"--output {a_file}: cannot"),
        ([*predict, "--scale-factors", "1,inf"], "positive and finite; got '1,inf'"),
        (["describe", "--width", "inf"], "must be a finite number > 0; got inf"),
        (["describe", "--width", "1e-9"], "use width >= 1/96"),
    ]
    for args, message in cases:
        try:
            code = cli.main(args)
        except SystemExit as exit_info:  # argparse's own errors
            code = exit_info.code
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "predictions.json").exists()


def test_top_k_beyond_the_classes_lists_them_all(saved_model, tmp_path, capsys):
    _, run = saved_model
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((240, 240, 3), np.uint8)).save(image)
    output = tmp_path / "p.json"
    args = ["predict", "--model", str(run), str(image), "--scales", "1"]
    assert cli.main([*args, "--top-k", "50", "--output", str(output)]) == 0
    assert "--top-k 50 is more than the model's 10 classes" in capsys.readouterr().err
    (rows,) = json.loads(output.read_text()).values()
    assert sorted(row[0] for row in rows) == list(range(10))


def test_damaged_model_files_are_named_in_one_line(saved_model, tmp_path, capsys):
    import zipfile

    model, run = saved_model
    good = (run / "model.keras").read_bytes()
    wider = tmp_path / "wider.keras"
    of.overfeat_fast(10, width=2 * TINY).save(wider)
    files = {
        "truncated.keras": (good[: len(good) // 2], "not a .keras archive"),
        "random.keras": (os.urandom(4000), "not a .keras archive"),
    }
    for name, (content, _) in files.items():
        (tmp_path / name).write_bytes(content)
    # The config of one model with the weights of a wider one: before, 276
    # lines of weight values.
    with zipfile.ZipFile(wider) as other:
        wider_weights = other.read("model.weights.h5")
    edits = {
        "mixed.keras": (
            lambda item, content: (
                wider_weights if item == "model.weights.h5" else content
            ),
            "conv1/kernel is (11, 11, 3, 12) in the config, ",
        ),
        "headless.keras": (
            lambda item, content: None if item == "config.json" else content,
            "no item named 'config.json'",
        ),
        "cut_weights.keras": (
            lambda item, content: (
                content[: len(content) // 3] if item == "model.weights.h5" else content
            ),
            "truncated file",
        ),
    }
    for name, (edit, message) in edits.items():
        # The run's archive, each item replaced by edit(item, content)
        # (None: left out).
        with (
            zipfile.ZipFile(run / "model.keras") as source,
            zipfile.ZipFile(tmp_path / name, "w") as edited,
        ):
            for item in source.namelist():
                content = edit(item, source.read(item))
                if content is not None:
                    edited.writestr(item, content)
        files[name] = (None, message)
    for name, (_, message) in files.items():
        path = tmp_path / name
        assert cli.main(["describe", "--model", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"overfeat describe: error: Cannot load {path}: ")
        assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_evaluate_prints_table2(saved_model, data_dir, tmp_path, capsys):
    _, run = saved_model
    output = tmp_path / "results.json"
    args = ["evaluate", "--config", "tiny", "--model", str(run), "--limit", "3"]
    args += ["--output", str(output), f"data.data_dir={data_dir}"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "overfeat_shapes/classification:test, 3 images" in out
    results = json.loads(output.read_text())["results"]
    assert [r["configuration"] for r in results][-1].startswith("10 views")
    assert len(results) == 6
    for r in results:
        assert 0 <= r["top5_error"] <= r["top1_error"] <= 100
        assert f"| {r['configuration']} | {r['top1_error']:.2f} |" in out
    assert cli.main([*args, "--scale-sizes", "100"]) == 2
    assert "Scales must be at least the window" in capsys.readouterr().err
    missing = ["evaluate", "--config", "tiny", f"output_dir={tmp_path / 'empty'}"]
    assert cli.main(missing) == 2
    assert "train it first: overfeat train --config tiny" in capsys.readouterr().err


COMMANDS = ("quickstart", "describe", "train", "evaluate", "predict", "export")


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_flags_are_one_line_errors(command, capsys):
    needed = {"train": ["--config", "tiny"], "predict": ["x.png"]}.get(command, [])
    for bad in (["--bogus"], ["--conf", "tiny"]):  # unknown, and not abbreviated
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, *needed, *bad])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith(f"overfeat {command}: error: unrecognized arguments:")
        assert bad[0] in err and err.endswith(f"(see overfeat {command} --help)\n")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["trian"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'trian'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "export"])
def test_bad_override_keys_name_the_key(command, saved_model, tmp_path, capsys):
    _, run = saved_model
    args = {
        "train": [],
        "evaluate": ["--model", str(run)],
        "predict": ["--model", str(run), str(tmp_path)],
        "export": ["--model", str(run), "--output", str(tmp_path)],
    }[command]
    assert cli.main([command, "--config", "tiny", *args, "train.epoch=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"overfeat {command}: error:") and err.count("\n") == 1
    assert "unknown key 'train.epoch'" in err and "epochs" in err  # the valid keys
    if command != "train":  # overrides without a recipe to apply them to
        assert cli.main([command, *args, "train.epochs=3"]) == 2
        err = capsys.readouterr().err
        assert ("overrides need --config" in err) != (command == "evaluate")
        assert "give --config" in err or "train.epochs=3" in err


def test_missing_files_are_named(tmp_path, capsys):
    recipe, data, classifier = (str(tmp_path / n) for n in ("r.yaml", "d", "c"))
    model = str(tmp_path / "m.keras")
    cases = [
        (["train", "--config", recipe], f"No config file at '{recipe}'"),
        (["train", "--config", "shapes_fats"], "No recipe 'shapes_fats'"),
        (
            ["train", "--config", "shapes_fast", f"data.source={data}"],
            f"this directory does not exist. Received: source='{data}'",
        ),
        (
            [
                "train",
                "--config",
                "shapes_fast_localize",
                f"localize.backbone={classifier}",
            ],
            f"localize.backbone: No trained model at {classifier}. Train",
        ),
        (
            ["evaluate", "--config", "tiny", "--model", model],
            f"No trained model at {model}; pass --model",
        ),
        (["export", "--model", model], f"No trained model at {model}"),
    ]
    for args, message in cases:
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_predict_tells_overrides_from_images(saved_model, tmp_path, capsys):
    _, run = saved_model
    image = tmp_path / "k=v.png"  # a file whose name reads like an override
    Image.fromarray(np.zeros((240, 240, 3), np.uint8)).save(image)
    output = tmp_path / "p.json"
    args = ["predict", "--model", str(run), "--scales", "1", "--output", str(output)]
    assert cli.main([*args, "--config", "tiny", str(image), "seed=3"]) == 0
    assert list(json.loads(output.read_text())) == [str(image)]
    capsys.readouterr()
    assert cli.main([*args, str(image), "seed=3"]) == 2  # an override, not an image
    assert "overrides need --config; got seed=3" in capsys.readouterr().err


def test_train_output_is_output_dir():
    parser = overfeat_cli.build_parser()
    args = parser.parse_args(["train", "--config", "tiny", "--output", "r1"])
    assert args.output_dir == "r1"


def test_describe_a_saved_model(saved_model, tmp_path, capsys):
    _, run = saved_model
    assert cli.main(["describe", "--model", str(run), "--image-size", "256x320"]) == 0
    from_model = capsys.readouterr().out
    flags = ["--network", "fast", "--width", str(TINY), "--num-classes", "10"]
    assert cli.main(["describe", *flags, "--image-size", "256x320"]) == 0
    assert from_model == capsys.readouterr().out
    assert f"width {TINY:g}, 10 classes" in from_model
    assert cli.main(["describe", "--model", str(tmp_path / "none")]) == 2
    assert f"No trained model at {tmp_path / 'none'}" in capsys.readouterr().err


def _save_images(rng, paths_and_sizes):
    """Random lossless images at `path: (height, width)`; returns the pixels."""
    pixels = {}
    for path, size in paths_and_sizes.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels[str(path)] = rng.integers(0, 256, (*size, 3), np.uint8)
        Image.fromarray(pixels[str(path)]).save(path)
    return pixels


QUICK = ["--scales", "1", "--no-flips"]


def test_predict_descends_into_class_folders(saved_model, tmp_path, rng, capsys):
    _, run = saved_model
    root = tmp_path / "photos"
    files = [root / "cat" / "b.png", root / "cat" / "a.png"]
    files += [root / "dog" / "puppies" / "c.png", root / "z.png"]
    _save_images(rng, {path: (240, 240) for path in files})
    _save_images(rng, {root / ".thumbnails" / "a.png": (240, 240)})  # hidden
    (root / "dog" / "labels.csv").write_text("not an image")
    output = tmp_path / "p.json"
    args = ["predict", "--model", str(run), str(root), *QUICK]
    assert cli.main([*args, "--output", str(output)]) == 0
    want = ["cat/a.png", "cat/b.png", "dog/puppies/c.png", "z.png"]
    assert list(json.loads(output.read_text())) == [str(root / p) for p in want]
    capsys.readouterr()

    broken = root / "dog" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    assert cli.main([*args, "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("overfeat predict: error: Cannot decode image " + str(broken))


def test_predict_reads_a_voc_split_list(saved_model, tmp_path, rng, capsys):
    _, run = saved_model
    root = tmp_path / "VOC2007"
    images = root / "JPEGImages"
    _save_images(rng, {images / f"{i}.jpg": (240, 250) for i in ("000005", "000012")})
    _save_images(rng, {images / "000099.jpg": (240, 250)})  # in no list
    lists = root / "ImageSets" / "Main"
    lists.mkdir(parents=True)
    (lists / "val.txt").write_text("000012\n000005\n\n")
    (lists / "cat_val.txt").write_text("000005 -1\n000012  1\n")
    output = tmp_path / "p.json"
    args = ["predict", "--model", str(run), *QUICK, "--output", str(output)]
    assert cli.main([*args, "--voc-list", str(lists / "val.txt")]) == 0
    listed = [str(images / "000012.jpg"), str(images / "000005.jpg")]
    assert list(json.loads(output.read_text())) == listed  # the list's order
    # Images first, then each list; each image once.
    extra = str(images / "000099.jpg")
    lists_args = ["--voc-list", str(lists / "cat_val.txt"), "--voc-list"]
    assert cli.main([*args, extra, *lists_args, str(lists / "val.txt")]) == 0
    assert list(json.loads(output.read_text())) == [extra, *listed[::-1]]
    capsys.readouterr()

    (lists / "test.txt").write_text("000005\n000077\n")
    (tmp_path / "ids.txt").write_text("000005\n")
    cases = [
        (lists / "test.txt", f"No image {images / '000077.jpg'} for id '000077' "),
        (tmp_path / "ids.txt", "ROOT/ImageSets/Main/SPLIT.txt"),
        (lists / "train.txt", f"No VOC split list at {lists / 'train.txt'}"),
    ]
    for path, message in cases:
        assert cli.main([*args, "--voc-list", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("overfeat predict: error:") and message in err, err


def test_predict_batches_images_by_size(
    saved_model, tmp_path, rng, capsys, monkeypatch
):
    model, run = saved_model
    sizes = {"a": (240, 260), "b": (250, 300), "c": (240, 260), "d": (240, 260)}
    sizes["e"] = (250, 300)
    pixels = _save_images(rng, {tmp_path / f"{n}.png": s for n, s in sizes.items()})
    calls = []
    call = Classifier.__call__

    def spy(self, images):
        calls.append(images.shape)
        return call(self, images)

    monkeypatch.setattr(Classifier, "__call__", spy)
    output = tmp_path / "p.json"
    args = ["predict", "--model", str(run), str(tmp_path), *QUICK]
    assert cli.main([*args, "--batch-size", "2", "--output", str(output)]) == 0
    # One call per batch of one size, at most 2 images each.
    assert calls == [(2, 240, 260, 3), (1, 240, 260, 3), (2, 250, 300, 3)]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == (
        "protocol: fast network, 1 scale (256), fine stride, no flips, "
        "images batched by size (up to 2 a call)"
    )
    paths = [line for line in printed if line.startswith(str(tmp_path))]
    predictions = json.loads(output.read_text())
    assert paths == list(predictions) == sorted(pixels)  # as listed
    monkeypatch.undo()
    classifier = Classifier(model, scales=(256,), flips=False)
    for path, image in pixels.items():
        want = classifier(image)
        ids = want["top_k_ids"].numpy().tolist()
        assert [row[0] for row in predictions[path]] == ids
        np.testing.assert_allclose(
            [row[2] for row in predictions[path]],
            want["top_k_probabilities"],
            rtol=1e-5,
        )
    # The default protocol, and how to try a quicker one.
    args = ["predict", "--model", str(run), str(tmp_path / "a.png")]
    assert cli.main([*args, "--output", str(output)]) == 0
    assert capsys.readouterr().out.startswith(
        "protocol: fast network, 6 scales (256, 294, 331, 407, 444, 482), "
        "fine stride, flips, images batched by size (up to 8 a call)\n"
    )
    with pytest.raises(SystemExit):
        cli.main(["predict", "--help"])
    assert "for a quick first try add --scales 1 --no-flips" in capsys.readouterr().out


def test_help_does_not_import_tensorflow(tmp_path):
    """`overfeat --help`, a command's help and a usage error answer without
    importing TensorFlow, Keras or the package; the console script runs
    overfeat_cli."""
    code = textwrap.dedent(
        """
        import sys
        from importlib.metadata import entry_points

        import overfeat_cli

        for argv in (["--help"], ["predict", "--help"], ["trian"]):
            try:
                overfeat_cli.main(argv)
            except SystemExit as exit:
                assert exit.code == (2 if argv == ["trian"] else 0), argv
        heavy = {"tensorflow", "keras", "overfeat_tf"} & set(sys.modules)
        assert not heavy, heavy
        script = entry_points(group="console_scripts")["overfeat"]
        assert script.value == "overfeat_cli:main", (
            f"overfeat runs {script.value}: reinstall (pip install -e .)"
        )
        """
    )
    # Not from the repository: a stale overfeat_tf.egg-info there is read first.
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "--voc-list FILE" in done.stdout and "invalid choice" in done.stderr


@pytest.mark.slow
def test_start_up_notices_are_hidden(tmp_path):
    """TensorFlow's start-up notices (cuInit, oneDNN, ...) stay out of
    stderr when TF_CPP_MIN_LOG_LEVEL is unset."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-m", "overfeat_cli", "describe", "--network", "fast"]
    done = subprocess.run(
        [*command, "--width", "0.125"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "window 231 px" in done.stdout
    for notice in ("cuInit", "oneDNN", "absl::InitializeLog", "cuda drivers"):
        assert notice not in done.stderr, done.stderr


def test_a_bug_keeps_its_traceback(monkeypatch, capsys):
    # Only the package's own errors (and OS errors about a named file) are
    # one line and exit 2; a plain ValueError is a bug.
    def broken(args):
        raise ValueError("a bug")

    monkeypatch.setitem(cli.COMMANDS, "describe", broken)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["describe"])

    def missing(args):
        open("/no/such/folder/file.txt")

    monkeypatch.setitem(cli.COMMANDS, "describe", missing)
    assert cli.main(["describe"]) == 2
    assert "'/no/such/folder/file.txt'" in capsys.readouterr().err


def test_inference_commands_default_to_eigen_and_training_keeps_onednn():
    assert (
        overfeat_cli.tensorflow_environment("predict")["TF_ENABLE_ONEDNN_OPTS"] == "0"
    )
    for command in ("train", "quickstart"):
        assert "TF_ENABLE_ONEDNN_OPTS" not in overfeat_cli.tensorflow_environment(
            command
        )


@pytest.mark.slow
def test_the_onednn_default_applies_before_tensorflow_and_keeps_the_users():
    code = (
        "import os, overfeat_cli; overfeat_cli._start_tensorflow('predict'); "
        "print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    for user, expected in [(None, "0"), ("1", "1")]:
        run_env = env if user is None else {**env, "TF_ENABLE_ONEDNN_OPTS": user}
        done = subprocess.run(
            [sys.executable, "-c", code], env=run_env, capture_output=True, text=True
        )
        assert done.stdout.strip() == expected, done.stderr
