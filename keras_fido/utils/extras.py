"""Optional packages: the extras of `pip install "keras-fido[...]"`.

The model library needs none of them. The embedded demo task needs the
`demo` extra, the benchmark the `benchmark` extra; without them, using
those parts raises a one-line `ImportError` that names the install.
"""

import importlib
import importlib.util

# Which extra installs each optional package.
EXTRAS = {
    "bm25s": "demo",
    "countryinfo": "demo",
    "matplotlib": "benchmark",
    "onnx": "onnx",
    "onnxruntime": "onnx",
}


def missing_extra_error(package):
    """The `ImportError` to raise when optional `package` is missing."""
    extra = EXTRAS[package]
    return ImportError(
        f"This part of keras_fido needs the `{package}` package, which is "
        f'not installed: run `pip install "keras-fido[{extra}]"`.'
    )


def require(*packages):
    """Raises `missing_extra_error` for the first of `packages` that is
    not installed (without importing any of them)."""
    for package in packages:
        if importlib.util.find_spec(package) is None:
            raise missing_extra_error(package) from None


def import_optional(package):
    """The module `package`, or `missing_extra_error(package)`."""
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as error:
        if error.name != package:
            raise
        raise missing_extra_error(package) from None
