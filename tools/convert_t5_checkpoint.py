"""Convert T5.1.1 checkpoints: `python tools/convert_t5_checkpoint.py --help`.

    python tools/convert_t5_checkpoint.py T5_DIR OUT_PRESET             # FiD
    python tools/convert_t5_checkpoint.py T5_DIR OUT_PRESET --to-fido \
        --decoder-checkpoint T5_XL_DIR --cross-attention-interval 6 \
        --num-key-value-heads 1                                         # FiDO
    python tools/convert_t5_checkpoint.py PRESET T5_DIR --to-transformers
"""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import sys

from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

from keras_fido.convert.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
