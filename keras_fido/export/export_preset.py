"""Export a saved FiDO preset for TF Serving, from any Keras backend."""

import os
import subprocess
import sys

import keras

from keras_fido.export.export_saved_model import _version_dir
from keras_fido.export.export_saved_model import export_saved_model


def export_preset(
    preset,
    export_dir,
    version=None,
    max_length=None,
    jit_compile=True,
    overwrite=False,
):
    """Loads a reader's preset directory and exports it for TF Serving.

    The SavedModel is built from TensorFlow ops, so the preset is loaded
    under the TensorFlow backend: in this process when it runs TensorFlow,
    otherwise in a subprocess with `KERAS_BACKEND=tensorflow` (a preset
    saved under JAX or PyTorch loads under TensorFlow unchanged). The
    export is `export_saved_model`'s: signatures `serving_default`
    (strings) and `serving_tokens` (token ids), and with passage memory
    `serving_memory` and `serving_memory_tokens`, written to
    `export_dir/<version>/`.

    Args:
        preset: string. A directory written by
            `FiDOSeq2SeqLM.save_to_preset` (with its preprocessor and
            tokenizer).
        export_dir: string. The model's base directory for TF Serving.
        version: positive int. Defaults to the next free version.
        max_length: positive int. The decoder length, start token
            included. Defaults to the preprocessor's
            `decoder_sequence_length`.
        jit_compile: bool. XLA-compile the encoder and decoding loop.
        overwrite: bool. Replace an existing version directory.

    Returns:
        The version directory, `export_dir/<version>`.

    Examples:
    ```python
    # Under any backend, e.g. right after training with JAX:
    reader.save_to_preset("my_fido")
    keras_fido.export.export_preset("my_fido", "serving/fido")
    # -> "serving/fido/1"
    ```
    """
    if not isinstance(preset, (str, os.PathLike)) or not os.path.isdir(preset):
        raise ValueError(
            "`preset` must be a directory written by "
            "`FiDOSeq2SeqLM.save_to_preset`. Received: "
            f"preset={preset!r}"
        )
    preset = os.fspath(preset)
    if keras.config.backend() == "tensorflow":
        from keras_fido.models import FiDOSeq2SeqLM

        reader = FiDOSeq2SeqLM.from_preset(preset)
        return export_saved_model(
            reader,
            export_dir,
            version=version,
            max_length=max_length,
            jit_compile=jit_compile,
            overwrite=overwrite,
        )
    # Fix the version here, so that this process knows the directory.
    version_dir = _version_dir(export_dir, version, overwrite)
    command = [
        sys.executable,
        "-m",
        "keras_fido.export",
        preset,
        os.fspath(export_dir),
        "--version",
        os.path.basename(version_dir),
    ]
    if max_length is not None:
        command += ["--max-length", str(max_length)]
    if not jit_compile:
        command.append("--no-jit-compile")
    if overwrite:
        command.append("--overwrite")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-20:])
        raise RuntimeError(
            f"Exporting {preset!r} under KERAS_BACKEND=tensorflow failed "
            f"(exit code {result.returncode}). Its last lines:\n{tail}"
        )
    return version_dir
