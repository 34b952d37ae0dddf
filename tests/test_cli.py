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
