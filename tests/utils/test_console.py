"""Entry points keep TensorFlow's native log lines off the console."""

import os
import re
import subprocess
import sys

import pytest

from keras_fido.utils import console

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
# absl / TensorFlow C++ log lines ("I0000 00:00:17.5   12 port.cc:153] ")
# and absl's header.
NATIVE_LINE = re.compile(
    r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\]|absl::InitializeLog|"
    r"cpu_feature_guard",
    re.MULTILINE,
)


def run_python(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def test_load_notices_are_dropped_and_other_lines_kept(capfd):
    with console._without_load_notices():
        os.write(
            2,
            b"WARNING: All log messages before absl::InitializeLog() is "
            b"called are written to STDERR\n"
            b"I0000 00:00:1796561089.019722    1497 port.cc:153] oneDNN "
            b"custom operations are on.\n"
            b"a warning of the user's own\n",
        )
    assert capfd.readouterr().err == "a warning of the user's own\n"


def test_verbose_leaves_the_logging_alone(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert not console.quiet_native_logs(["prog", "--verbose"])
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ


def test_a_level_the_user_set_is_kept(monkeypatch):
    import tensorflow  # noqa: F401  (already loaded: nothing to capture)

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    assert console.quiet_native_logs(["prog"])
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"


def test_the_verbose_flag_is_offered():
    import argparse

    parser = console.add_verbose_flag(argparse.ArgumentParser())
    assert parser.parse_args(["--verbose"]).verbose
    assert not parser.parse_args([]).verbose


@pytest.mark.large
def test_quickstart_prints_no_native_log_lines():
    done = run_python("-m", "keras_fido.quickstart", "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--verbose" in done.stdout
    assert not NATIVE_LINE.search(done.stderr), done.stderr[-2000:]


@pytest.mark.large
def test_tensorflow_work_after_quieting_prints_no_native_log_lines():
    # An int64 matmul: oneDNN's "E0000 ... supports DT_INT64 only on
    # platforms with AVX-512" notice where AVX-512 is missing.
    done = run_python(
        "-c",
        "from keras_fido.utils.console import quiet_native_logs\n"
        "quiet_native_logs(['prog'])\n"
        "import tensorflow as tf\n"
        "x = tf.constant([[1, 2], [3, 4]], tf.int64)\n"
        "print(int(tf.reduce_sum(tf.matmul(x, x))))\n",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["54"]
    assert not NATIVE_LINE.search(done.stderr), done.stderr[-2000:]
