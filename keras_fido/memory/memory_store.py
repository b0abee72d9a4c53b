"""A passage memory store on disk, opened memory-mapped."""

import json
import os
import threading

import numpy as np

from keras_fido.memory.memory_codec import STORE_DTYPES
from keras_fido.memory.memory_codec import decode_vectors
from keras_fido.memory.memory_fingerprint import fingerprint_differences
from keras_fido.memory.memory_fingerprint import memory_fingerprint
from keras_fido.memory.memory_shards import check_shard_file
from keras_fido.memory.memory_shards import file_sha256
from keras_fido.memory.memory_shards import open_shard_file

FORMAT = "keras_fido.memory_store"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
IDS_FILE = "passage_ids.txt"
ON_MISSING = ("raise", "skip")
# How many missing ids an error names.
_NAMED = 5


class MemoryStore:
    """A store of passage memory written by `build_memory_store`.

    The shards are opened memory-mapped (`np.load(..., mmap_mode="r")`):
    a lookup reads only the rows it asks for, so the store never has to
    fit in RAM. Every file is checked when the store opens (present, a
    readable `.npy` header, the manifest's shape and dtype, the size its
    header implies), and a shard's sha256 is checked the first time a
    lookup reads from it (`verify()` checks them all); a damaged file is
    refused, naming it, and nothing is returned from it.

    Args:
        directory: the store's directory.

    Examples:
    ```python
    store = MemoryStore("memory/")
    store.check_reader(reader)  # Same memory encoder, or an error.
    batch = store.lookup(["France/government", "France/currency"])
    batch["passage_memory"].shape  # (2, positions, encoder_hidden_dim)
    store.bytes_per_passage
    ```
    """

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        self.manifest = _read_manifest(self.directory)
        self.dtype = self.manifest["dtype"]
        self.fingerprint = self.manifest["fingerprint"]
        self.passage_positions = self.manifest["passage_positions"]
        self.hidden_dim = self.manifest["hidden_dim"]
        shards = self.manifest["shards"]
        self._shards = [self._open(entry) for entry in shards]
        self._starts = np.array([entry["rows"][0] for entry in shards])
        self._blank = self._open(self.manifest["blank"])
        self._verified = set()
        self._lock = threading.Lock()
        self._ids = None
        self._rows = None

    def _open(self, entry):
        return {
            key: open_shard_file(self.directory, file)
            for key, file in entry["files"].items()
        }

    def __len__(self):
        return self.manifest["num_passages"]

    @property
    def passage_ids(self):
        """The passage ids, in row order (read on first use)."""
        if self._ids is None:
            entry = self.manifest["passage_ids"]
            path = os.path.join(self.directory, entry["name"])
            if not os.path.exists(path) or file_sha256(path) != entry["sha256"]:
                raise ValueError(
                    f"Damaged passage memory store: {path} is missing or "
                    "its sha256 is not the manifest's."
                )
            with open(path, encoding="utf-8") as file:
                self._ids = [line.rstrip("\n") for line in file]
        return self._ids

    @property
    def bytes_per_passage(self):
        """Bytes on disk per passage: memory, scales, ids and length."""
        return sum(
            int(np.prod(file["shape"][1:])) * np.dtype(file["dtype"]).itemsize
            for file in self.manifest["blank"]["files"].values()
        )

    @property
    def config(self):
        """The memory encoder's config the store was built with."""
        return dict(self.manifest["config"])

    # --- Checks -----------------------------------------------------------

    def check_reader(self, reader):
        """Raises unless `reader`'s memory encoder built this store.

        The error names both fingerprints and what differs: config keys
        (with both values), prefixes, the tokenizer, the memory encoder's
        weights.
        """
        current = memory_fingerprint(reader)
        if current["fingerprint"] == self.fingerprint:
            return
        differences = fingerprint_differences(self.manifest, current)
        raise ValueError(
            "The passage memory store was built by another memory encoder: "
            f"expected fingerprint {current['fingerprint']} (the reader's). "
            f"Received: {self.fingerprint} (store {self.directory}). "
            f"Differences: {'; '.join(differences) or 'none named'}."
        )

    def verify(self):
        """Checks the sha256 of every shard file and of the id list."""
        for index in range(len(self._shards)):
            self._verify(index)
        self._verify("blank")
        self.passage_ids

    def _verify(self, index):
        if index in self._verified:
            return
        with self._lock:
            if index in self._verified:
                return
            entry = (
                self.manifest["blank"]
                if index == "blank"
                else self.manifest["shards"][index]
            )
            for file in entry["files"].values():
                check_shard_file(self.directory, file)
            self._verified.add(index)

    # --- Lookups ----------------------------------------------------------

    def rows(self, passage_ids, on_missing="raise"):
        """The row of each id (`-1` for `""` and, with `"skip"`, for ids
        not in the store) and the number of ids skipped.

        A missing id with `on_missing="raise"` is a `KeyError` naming the
        first few missing ids.
        """
        if on_missing not in ON_MISSING:
            raise ValueError(
                f"`on_missing` must be one of {ON_MISSING}. Received: "
                f"on_missing={on_missing!r}"
            )
        if self._rows is None:
            self._rows = {i: row for row, i in enumerate(self.passage_ids)}
        ids = [_as_id(i) for i in np.asarray(passage_ids, object).ravel()]
        rows = np.array([self._rows.get(i, -1) for i in ids], "int64")
        missing = [i for i, row in zip(ids, rows) if row < 0 and i]
        if missing and on_missing == "raise":
            raise KeyError(
                f"{len(missing)} passage id(s) are not in the passage memory "
                f"store {self.directory}: {missing[:_NAMED]}"
                f"{' ...' if len(missing) > _NAMED else ''}. Pass "
                "on_missing='skip' to leave them out with a count."
            )
        shape = np.shape(passage_ids)
        return rows.reshape(shape), len(missing)

    def gather(self, rows):
        """The arrays of `rows` (any shape; `-1` reads the empty slot):
        `passage_memory` float32 `rows.shape + [positions, d]`,
        `passage_token_ids` int32 and `passage_padding_mask` bool
        `rows.shape + [positions]`."""
        rows = np.asarray(rows, "int64")
        flat = rows.ravel()
        out = {
            key: np.empty((flat.size, *array.shape[1:]), array.dtype)
            for key, array in self._blank.items()
        }
        shard = np.searchsorted(self._starts, flat, side="right") - 1
        for index in np.unique(np.where(flat < 0, -1, shard)):
            where = flat < 0 if index < 0 else (shard == index) & (flat >= 0)
            self._verify("blank" if index < 0 else int(index))
            files = self._blank if index < 0 else self._shards[index]
            local = 0 if index < 0 else flat[where] - self._starts[index]
            for key, array in out.items():
                array[where] = files[key][local]
        memory = decode_vectors(out["memory"], out.get("scale"), self.dtype)
        positions = np.arange(self.passage_positions)
        mask = positions < out["lengths"][:, None]
        shape = (*rows.shape, self.passage_positions)
        return {
            "passage_memory": memory.reshape(*shape, self.hidden_dim),
            "passage_token_ids": out["token_ids"].reshape(shape),
            "passage_padding_mask": mask.reshape(shape),
        }

    def lookup(self, passage_ids, on_missing="raise"):
        """The stored arrays of some passages.

        Args:
            passage_ids: a list of ids (strings; ints are read as their
                decimal strings).
            on_missing: `"raise"` (a `KeyError` naming the first missing
                ids) or `"skip"` (leave them out).

        Returns:
            A dict: `passage_memory` float32 `[n, positions, d]`
            (dequantized), `passage_token_ids` int32 `[n, positions]`,
            `passage_padding_mask` bool `[n, positions]`, `passage_ids`
            (the `n` ids found, in order) and `skipped` (how many were
            not).
        """
        ids = [_as_id(i) for i in passage_ids]
        rows, skipped = self.rows(ids, on_missing)
        found = rows >= 0
        out = self.gather(rows[found])
        out["passage_ids"] = [i for i, keep in zip(ids, found) if keep]
        out["skipped"] = skipped
        return out


def _as_id(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, str):
        return value
    raise ValueError(
        "A passage id must be a string or an int. Received: "
        f"{value!r} of type {type(value).__name__}"
    )


def _read_manifest(directory):
    path = os.path.join(directory, MANIFEST_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No passage memory store at {directory}: expected "
            f"{MANIFEST_FILE} there (written by `build_memory_store`)."
        )
    try:
        with open(path, encoding="utf-8") as file:
            manifest = json.load(file)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"Damaged passage memory store: {path} is not valid JSON ({error})."
        ) from None
    version = (manifest.get("format"), manifest.get("format_version"))
    if version != (FORMAT, FORMAT_VERSION):
        raise ValueError(
            f"{path} must be a passage memory store manifest: expected "
            f"format {FORMAT!r} version {FORMAT_VERSION}. Received: "
            f"format {version[0]!r} version {version[1]!r}"
        )
    if manifest.get("dtype") not in STORE_DTYPES:
        raise ValueError(
            f"{path}: `dtype` must be one of {STORE_DTYPES}. Received: "
            f"{manifest.get('dtype')!r}"
        )
    return manifest
