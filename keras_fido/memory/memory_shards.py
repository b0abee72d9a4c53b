"""The shard files of a passage memory store: writing them row block by
row block with `open_memmap`, and opening them memory-mapped with every
check a damaged file fails.

A shard holds rows `[start, stop)` of the store, one `.npy` file per
array: `memory` (`[n, positions, d]`, the stored dtype), `scale`
(`[n, positions]` float32, int8 stores only), `token_ids`
(`[n, positions]` int32) and `lengths` (`[n]` int32: the passage block's
mask is its first `length` positions).
"""

import hashlib
import os

import numpy as np
from numpy.lib.format import open_memmap

from keras_fido.memory.memory_codec import FILE_DTYPES
from keras_fido.memory.memory_codec import encode_vectors

_CHUNK = 1 << 22


def file_sha256(path):
    """sha256 hex of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shard_arrays(dtype, rows, positions, hidden_dim):
    """`{name: (shape, numpy dtype)}` of a shard of `rows` rows."""
    arrays = {
        "memory": ((rows, positions, hidden_dim), FILE_DTYPES[dtype]),
        "token_ids": ((rows, positions), "int32"),
        "lengths": ((rows,), "int32"),
    }
    if dtype == "int8":
        arrays["scale"] = ((rows, positions), "float32")
    return arrays


class ShardWriter:
    """Writes rows into shards of `shard_size` rows under `directory`.

    Each shard's files are opened with `open_memmap` at full size, filled
    in place, and cut to the rows written when the shard closes (only the
    last one can be short). `close()` returns the manifest entries.

    Args:
        directory: where the files go.
        dtype: the store dtype.
        positions: the passage block's positions.
        hidden_dim: the memory's width.
        shard_size: rows per shard.
        prefix: file name prefix, `"shard"` or `"blank"`.
    """

    def __init__(
        self, directory, dtype, positions, hidden_dim, shard_size, prefix
    ):
        self.directory = directory
        self.dtype = dtype
        self.positions = positions
        self.hidden_dim = hidden_dim
        self.shard_size = shard_size
        self.prefix = prefix
        self.entries = []
        self.rows = 0
        self._open = None  # (files, names, start, filled)

    def write(self, memory, token_ids, lengths):
        """Appends rows: memory float `[n, positions, d]`, ids `[n,
        positions]`, lengths `[n]`."""
        stored, scale = encode_vectors(memory, self.dtype)
        values = {"memory": stored, "token_ids": token_ids, "lengths": lengths}
        if scale is not None:
            values["scale"] = scale
        done, total = 0, len(lengths)
        while done < total:
            if self._open is None:
                self._start_shard()
            files, names, start, filled = self._open
            take = min(total - done, self.shard_size - filled)
            for name, array in files.items():
                array[filled : filled + take] = values[name][done : done + take]
            self._open = (files, names, start, filled + take)
            done += take
            self.rows += take
            if filled + take == self.shard_size:
                self._close_shard()

    def _start_shard(self):
        index = len(self.entries)
        name = self.prefix if self.prefix == "blank" else f"shard-{index:05d}"
        files, names = {}, {}
        arrays = shard_arrays(
            self.dtype, self.shard_size, self.positions, self.hidden_dim
        )
        for key, (shape, dtype) in arrays.items():
            names[key] = f"{name}.{key}.npy"
            path = os.path.join(self.directory, names[key])
            files[key] = open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        self._open = (files, names, self.rows, 0)

    def _close_shard(self):
        files, names, start, filled = self._open
        self._open = None
        entry = {"rows": [start, start + filled], "files": {}}
        for key, array in files.items():
            array.flush()
            path = os.path.join(self.directory, names[key])
            if filled < self.shard_size:
                _shrink(path, array, filled)
            entry["files"][key] = {
                "name": names[key],
                "shape": [filled, *array.shape[1:]],
                "dtype": str(array.dtype),
                "sha256": file_sha256(path),
            }
        self.entries.append(entry)

    def close(self):
        """Closes the open shard; returns the manifest entries."""
        if self._open is not None:
            self._close_shard()
        return self.entries


def _shrink(path, array, rows):
    """Rewrites the `.npy` file at `path` with its first `rows` rows."""
    partial = path + ".short"
    short = open_memmap(
        partial, mode="w+", dtype=array.dtype, shape=(rows, *array.shape[1:])
    )
    short[:] = array[:rows]
    short.flush()
    del short
    os.replace(partial, path)


def open_shard_file(directory, entry):
    """Opens one file of a manifest entry, memory-mapped, read-only.

    Raises a `ValueError` naming the file when it is missing, its header
    unreadable, its shape or dtype not the manifest's, or its size not
    what its header says (cut short or grown).
    """
    path = os.path.join(directory, entry["name"])
    problem = None
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        problem = f"cannot be read as .npy ({error})"
    else:
        expected = (tuple(entry["shape"]), np.dtype(entry["dtype"]))
        size = os.path.getsize(path)
        if (array.shape, array.dtype) != expected:
            problem = (
                f"holds {array.dtype} {list(array.shape)}, the manifest "
                f"says {entry['dtype']} {entry['shape']}"
            )
        elif size != array.offset + array.nbytes:
            problem = (
                f"is {size} bytes, its header says "
                f"{array.offset + array.nbytes}"
            )
    if problem is not None:
        raise ValueError(
            f"Damaged passage memory shard: {path} {problem}. Nothing is "
            "read from it; rebuild the store (`build_memory_store`)."
        )
    return array


def check_shard_file(directory, entry):
    """Raises naming the file unless its sha256 is the manifest's."""
    path = os.path.join(directory, entry["name"])
    digest = file_sha256(path)
    if digest != entry["sha256"]:
        raise ValueError(
            f"Damaged passage memory shard: {path} has sha256 {digest}, "
            f"the manifest says {entry['sha256']}. Nothing is read from "
            "it; rebuild the store (`build_memory_store`)."
        )
