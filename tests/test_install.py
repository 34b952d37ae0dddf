"""`pip install .` (not editable) into a new virtual environment gives a
working `overfeat` that finds its recipes and exporters installed; `pip
uninstall` removes it all and a reinstall works."""

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

# Minutes: run with --run-slow (see conftest.py).
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pip_install_gives_a_working_cli(tmp_path, tfds_dir):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # The dependencies come from this environment (TensorFlow again would be
    # a 600 MB download): a .pth file puts its site-packages on the new
    # path. Its own overfeat_tf does not come along: .pth files in a folder
    # added that way are not processed.
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    paths = sysconfig.get_paths()
    with open(os.path.join(site, "outer_environment.pth"), "w") as f:
        f.write(f"{paths['purelib']}\n{paths['platlib']}\n")
    # From a copy of the sources: building in place would leave build/ there.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".*", "build", "runs", "exports", "quickstart", "*.egg-info", "__pycache__"
        ),
    )

    def run(*args):
        return subprocess.run(
            [*args], cwd=tmp_path, capture_output=True, text=True, timeout=900
        )

    def pip(*args):
        done = run(python, "-m", "pip", *args)
        assert done.returncode == 0, done.stderr[-3000:]

    pip("install", "--no-build-isolation", "-q", str(source))

    where = run(python, "-c", "import overfeat_tf; print(overfeat_tf.__file__)")
    assert where.stdout.startswith(site), where.stdout + where.stderr
    overfeat = str(venv / "bin" / "overfeat")
    assert run(overfeat, "--help").returncode == 0
    out = tmp_path / "qs"
    done = run(
        overfeat,
        "quickstart",
        "--tiny",
        "--output",
        str(out),
        f"data.data_dir={tfds_dir}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "# overfeat quickstart" in done.stdout
    assert (out / "export" / "overfeat_pipeline_int8.tflite").exists()

    # Uninstalling leaves nothing behind; installing again works again.
    pip("uninstall", "-y", "-q", "overfeat-tf")
    assert not os.path.exists(overfeat)
    assert not [name for name in os.listdir(site) if name.startswith("overfeat")]
    assert run(python, "-c", "import overfeat_tf").returncode != 0
    pip("install", "--no-build-isolation", "-q", str(source))
    recipe = "from overfeat_tf.config import load_config; load_config('tiny')"
    assert run(python, "-c", recipe).returncode == 0
    assert run(overfeat, "--help").returncode == 0
