"""Benchmark FiD and FiDO variants: `python tools/benchmark.py --help`."""

import sys

from keras_fido.benchmark.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
