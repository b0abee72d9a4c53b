"""Export a reader preset for TF Serving.

    python tools/export_saved_model.py PRESET_DIR OUT_DIR [--version N]

Writes OUT_DIR/<version>/saved_model.pb; see `--help` and the README's
"Serving with TF Serving". The export is built from TensorFlow ops, so
this tool runs Keras on TensorFlow whatever KERAS_BACKEND says: a preset
saved under JAX or PyTorch loads under TensorFlow unchanged.
"""

import os
import sys

# Before keras is imported: its backend is fixed at import.
os.environ["KERAS_BACKEND"] = "tensorflow"

from keras_fido.export.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
