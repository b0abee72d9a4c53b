"""How memory vectors are stored: float16, bfloat16, or int8 with one
float32 scale per token vector.

int8 is symmetric absmax quantization per vector: `scale = max|x| / 127`,
`q = round(x / scale)`, read back as `q * scale`. The error of a value is
at most half a step, `max|x| / 254`, of its own vector's largest value.
bfloat16 is stored as its raw 16 bits (`uint16`): `.npy` files have no
bfloat16 type; `ml_dtypes` (installed with JAX) reads them back.
"""

import numpy as np

STORE_DTYPES = ("float16", "bfloat16", "int8")
# Bytes per stored value of the memory vectors.
VALUE_BYTES = {"float16": 2, "bfloat16": 2, "int8": 1}
# Bytes of the per-vector scale (int8 only).
SCALE_BYTES = {"float16": 0, "bfloat16": 0, "int8": 4}
# The numpy dtype of the memory file.
FILE_DTYPES = {"float16": "float16", "bfloat16": "uint16", "int8": "int8"}


def check_store_dtype(dtype):
    """Returns `dtype` if it is a store dtype, else raises naming it."""
    if dtype not in STORE_DTYPES:
        raise ValueError(
            f"`dtype` must be one of {STORE_DTYPES}. Received: dtype={dtype!r}"
        )
    return dtype


def _bfloat16():
    import ml_dtypes

    return ml_dtypes.bfloat16


def encode_vectors(vectors, dtype):
    """float `[..., d]` -> `(stored, scale)`: the file's values and the
    float32 scale `[...]` (`None` unless int8)."""
    vectors = np.asarray(vectors, "float32")
    if dtype == "float16":
        return vectors.astype("float16"), None
    if dtype == "bfloat16":
        return vectors.astype(_bfloat16()).view("uint16"), None
    absmax = np.max(np.abs(vectors), axis=-1)
    scale = np.where(absmax > 0, absmax / 127.0, 1.0).astype("float32")
    quantized = np.rint(vectors / scale[..., None])
    return np.clip(quantized, -127, 127).astype("int8"), scale


def decode_vectors(stored, scale, dtype):
    """The float32 vectors of `encode_vectors`' output."""
    if dtype == "float16":
        return np.asarray(stored, "float32")
    if dtype == "bfloat16":
        return np.asarray(stored).view(_bfloat16()).astype("float32")
    return np.asarray(stored, "float32") * np.asarray(scale)[..., None]
