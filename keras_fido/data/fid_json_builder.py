"""A tensorflow-datasets builder that prepares FiD json files."""

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from keras_fido.data.fid_json import _ON_ERROR
from keras_fido.data.fid_json import _check_choice
from keras_fido.data.fid_json import _check_num_passages
from keras_fido.data.fid_json import read_fid_examples

_SPLITS = ("train", "validation", "test")
_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")


@dataclasses.dataclass(eq=False)
class FiDJsonConfig(tfds.core.BuilderConfig):
    """Which FiD json files `FiDJson` prepares, and how.

    Args:
        name: str. The config name: the dataset is stored under
            `data_dir/fid_json/<name>/<version>` and loads afterwards with
            `tfds.load("fid_json/<name>", data_dir=...)`.
        train: str, path-like or `None`. The train split's FiD json or
            json-lines file (`.gz` allowed).
        validation: str, path-like or `None`. The validation split's file.
        test: str, path-like or `None`. The test split's file.
        num_passages: int or `None`. Keep at most this many passages per
            example (after sorting by score). Defaults to `None` (all).
        on_error: `"raise"` or `"skip"`: what a bad record does, as in
            `read_fid_examples`. Defaults to `"raise"`.

    A config without any file reads `train`, `validation` and `test` files
    (`.jsonl`, `.json`, `.jsonl.gz` or `.json.gz`) from the manual
    directory instead. Other arguments (`description`, `version`, ...) are
    those of `tfds.core.BuilderConfig`.
    """

    train: str | None = None
    validation: str | None = None
    test: str | None = None
    num_passages: int | None = None
    on_error: str = "raise"

    def __post_init__(self):
        self.num_passages = _check_num_passages(self.num_passages)
        _check_choice("on_error", self.on_error, _ON_ERROR)
        for split in _SPLITS:
            path = getattr(self, split)
            if path is not None:
                setattr(self, split, os.fspath(path))

    def split_files(self):
        """The `{split: path}` files named by this config."""
        paths = {split: getattr(self, split) for split in _SPLITS}
        return {split: path for split, path in paths.items() if path}


class FiDJson(tfds.core.GeneratorBasedBuilder):
    """Prepares FiD json / json-lines retrieval files as a tfds dataset.

    FiD (Izacard & Grave, 2021) files hold one record per question:
    `{"question", "answers", "target"?, "id"?, "ctxs": [{"title", "text",
    "score"?}, ...]}`. This builder reads them with `read_fid_examples`
    (validating every record, sorting passages by score) and writes a
    tfds dataset with features

    - `"id"`, `"question"`, `"target"`: strings (`"id"` is `""` when the
      record has none; `"target"` is the record's target, else its first
      answer, else `""`);
    - `"answers"`: a sequence of strings;
    - `"ctxs"`: a sequence of `{"title", "text", "score"}` (strings and a
      float32, `0.0` where a passage has no score).

    Once prepared, the dataset loads with `tfds.load("fid_json/<config>",
    data_dir=...)` without the original files, and with all of tfds'
    sharding, shuffling and caching. tfds stores a split's examples in an
    order of its own (hashed keys), not the file's: match predictions by
    `"id"` or `"question"`. The builder does not notice when the
    source files change afterwards: prepare a new config name (or delete
    the prepared folder) to rebuild.

    Give the files with a `FiDJsonConfig`, or put `train.jsonl`,
    `validation.jsonl` and `test.jsonl` (any of `.jsonl`, `.json`, with an
    optional `.gz`) in a manual directory and use the `"default"` config.

    Examples:

    Files named in a config:
    ```python
    config = FiDJsonConfig(
        name="nq", train="nq/train.jsonl", validation="nq/dev.jsonl",
        num_passages=20)
    builder = FiDJson(config=config, data_dir="~/tensorflow_datasets")
    builder.download_and_prepare()
    ds = builder.as_dataset(split="validation")
    # Later, anywhere, with keras_fido not even imported:
    ds = tfds.load("fid_json/nq", split="validation",
                   data_dir="~/tensorflow_datasets")
    ```

    Files in a manual directory:
    ```python
    builder = FiDJson(data_dir="~/tensorflow_datasets")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir="path/with/train_and_validation_jsonl"))
    ```
    """

    name = "fid_json"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [
        FiDJsonConfig(
            name="default",
            description=(
                "train / validation / test FiD json files read from the "
                "manual directory."
            ),
        )
    ]
    DEFAULT_CONFIG_NAME = "default"
    # tfds finds a builder's source file only to read the checksums of its
    # downloads, and for a builder outside its own package it does so with
    # `importlib_resources`, which tfds requires only on python < 3.9. This
    # builder downloads nothing: it needs neither.
    code_path = None
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put the FiD json or json-lines files in the manual directory, "
        "named `train`, `validation` and `test` with a `.jsonl`, `.json`, "
        "`.jsonl.gz` or `.json.gz` suffix (any subset of the splits), or "
        "name the files in a `FiDJsonConfig` instead."
    )

    def _info(self):
        text = tfds.features.Text()
        return self.dataset_info_from_configs(
            description=(
                "Open-domain QA examples with retrieved passages, prepared "
                "from FiD json files."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "id": text,
                    "question": text,
                    "answers": tfds.features.Sequence(text),
                    "target": text,
                    "ctxs": tfds.features.Sequence(
                        {"title": text, "text": text, "score": np.float32}
                    ),
                }
            ),
            supervised_keys=None,
            homepage="https://github.com/facebookresearch/FiD",
        )

    def _split_generators(self, dl_manager):
        files = self.builder_config.split_files()
        if not files:
            files = _manual_files(dl_manager.manual_dir)
        return {
            split: self._generate_examples(path)
            for split, path in files.items()
        }

    def _generate_examples(self, path):
        config = self.builder_config
        examples = read_fid_examples(
            path, num_passages=config.num_passages, on_error=config.on_error
        )
        for key, example in enumerate(examples):
            yield key, _to_features(example)


def _manual_files(manual_dir):
    files = {}
    for split in _SPLITS:
        for suffix in _SUFFIXES:
            path = manual_dir / f"{split}{suffix}"
            if path.exists():
                files[split] = os.fspath(path)
                break
    if not files:
        found = sorted(p.name for p in manual_dir.iterdir())
        raise ValueError(
            f"The manual directory {manual_dir} holds no FiD json file: "
            f"expected one of {[s + _SUFFIXES[0] for s in _SPLITS]} (or "
            f"with a suffix in {_SUFFIXES}). Received files: {found}"
        )
    return files


def _to_features(example):
    answers = example["answers"]
    target = example.get("target")
    if target is None:
        target = answers[0] if answers else ""
    example_id = example.get("id")
    ctxs = example["ctxs"]
    return {
        "id": "" if example_id is None else str(example_id),
        "question": example["question"],
        "answers": answers,
        "target": target,
        "ctxs": {
            "title": [c["title"] for c in ctxs],
            "text": [c["text"] for c in ctxs],
            "score": np.array(
                [c.get("score", 0.0) for c in ctxs], dtype=np.float32
            ),
        },
    }
