"""Export a reader preset for TF Serving.

    python tools/export_saved_model.py PRESET_DIR OUT_DIR [--version N]

Writes OUT_DIR/<version>/saved_model.pb; see `--help` and the README's
"Serving with TF Serving". The export is built from TensorFlow ops, so
this tool runs Keras on TensorFlow whatever KERAS_BACKEND says: a preset
saved under JAX or PyTorch loads under TensorFlow unchanged.
"""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import os
import sys

from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

# Before keras is imported: its backend is fixed at import.
os.environ["KERAS_BACKEND"] = "tensorflow"

from keras_fido.export.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
