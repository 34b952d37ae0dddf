"""The `overfeat` command."""

import pytest

from overfeat_tf import cli


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
    assert "top1_error" in capsys.readouterr().out
    assert (tmp_path / "model.keras").exists()
    assert (tmp_path / "config.yaml").exists()
    # Run again: every epoch is done, so it resumes at the end.
    assert cli.main(args) == 0
    assert "already finished its 2 epochs" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", "no_such_recipe"], "shapes_accurate"),
        (["--config", "tiny", "train.batchsize=3"], "train.batchsize"),
        (["--config", "tiny", "train.learning_rate=-1"], "learning_rate must be > 0"),
        (["--config", "tiny", "--strategy", "multi_worker"], "keras-team/keras#20585"),
    ],
)
def test_train_errors_are_one_line(args, message, capsys):
    assert cli.main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("overfeat train: error:")


def test_help_of_every_subcommand(capsys):
    for command in ("describe", "train"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0
        assert "examples:" in capsys.readouterr().out
