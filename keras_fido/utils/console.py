"""A quiet console for the command-line entry points keras_fido owns.

TensorFlow (and XLA under JAX) write their own C++ log lines to stderr:
notices about oneDNN, CUDA and CPU instructions while their libraries
load, then graph-optimizer warnings and `E`-prefixed notices that read
as failures in a first run. An entry point (`python -m
keras_fido.quickstart`, `recipes/*.py`, `tools/*.py`) calls
`quiet_native_logs()` as a script, before anything imports TensorFlow:

```python
from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # unless --verbose

import keras
```

and offers the flag with `add_verbose_flag(parser)`. Importing keras_fido
never calls it: a library leaves the user's logging alone.
"""

import contextlib
import importlib.util
import os
import re
import sys
import tempfile

VERBOSE_FLAG = "--verbose"
# TensorFlow's C++ log threshold: 3 keeps FATAL only. Errors that matter
# reach Python as exceptions; the `E` lines left are notices (e.g. "oneDNN
# supports DT_INT64 only on platforms with AVX-512").
QUIET_LEVEL = "3"
# absl's INFO lines ("I0000 00:00:1712.5   123 port.cc:153] ...") and its
# header, which TensorFlow prints while its libraries load, before it
# reads TF_CPP_MIN_LOG_LEVEL.
_LOAD_NOTICE = re.compile(
    r"I\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\)"
)


def add_verbose_flag(parser):
    """Adds `--verbose` (keep the native log lines) to an argparse parser."""
    parser.add_argument(
        VERBOSE_FLAG,
        action="store_true",
        help="keep TensorFlow's native (C++) log lines on stderr",
    )
    return parser


def quiet_native_logs(argv=None):
    """Quiets TensorFlow's native logging, unless `--verbose` is in `argv`.

    Sets `TF_CPP_MIN_LOG_LEVEL` to 3 unless the user set it, then loads
    TensorFlow with the notices its libraries print while loading
    dropped from stderr (every other line is kept). Call it before
    anything imports TensorFlow: the level is read once, at the first
    log line.

    Args:
        argv: the command line; `sys.argv` by default.

    Returns:
        Whether the logs were quieted.
    """
    argv = sys.argv if argv is None else argv
    if VERBOSE_FLAG in argv[1:]:
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LEVEL)
    if "tensorflow" in sys.modules:
        return True
    if importlib.util.find_spec("tensorflow") is None:
        return True
    with _without_load_notices():
        import tensorflow  # noqa: F401
    return True


@contextlib.contextmanager
def _without_load_notices():
    """Captures the stderr file descriptor, then writes back every line
    but TensorFlow's load notices (which the C++ libraries write to the
    descriptor directly, past `sys.stderr`)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # No stderr descriptor to capture.
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [
                line
                for line in text.splitlines(keepends=True)
                if not _LOAD_NOTICE.match(line)
            ]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
