"""Benchmark FiD and FiDO variants: `python tools/benchmark.py --help`."""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import sys

from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

from keras_fido.benchmark.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
