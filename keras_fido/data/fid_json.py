"""Reading and writing FiD json / json-lines retrieval files.

FiD (Izacard & Grave, 2021) stores an open-domain QA split as records

```
{"id": "0", "question": "...", "answers": ["..."], "target": "...",
 "ctxs": [{"title": "...", "text": "...", "score": "83.2"}, ...]}
```

either as one json array (`.json`) or one record per line (`.jsonl`).
`"id"`, `"target"`, `"title"` and `"score"` are optional. Everything here
streams: records are parsed one at a time, so multi-gigabyte files are
never loaded whole.

Bad input: malformed json, bytes that are not UTF-8, and records with a
missing or ill-typed field raise a `ValueError` naming the file, the line
and the field (or, with `on_error="skip"`, are skipped with a logged
warning). A record without passages (an empty `"ctxs"`) is read, with one
logged warning per pass, since the preprocessor encodes its question alone;
`on_empty_ctxs="raise"` makes it an error instead. Warnings go to the
`logging` logger `keras_fido.data.fid_json`. Records are checked by
`keras_fido.data.fid_example.parse_fid_record`, the validator that the
tfds reader and the preprocessor share.
"""

import gzip
import json
import logging

from keras_fido.data.fid_dataset import ON_EMPTY_CTXS
from keras_fido.data.fid_dataset import ON_ERROR
from keras_fido.data.fid_dataset import check_choice
from keras_fido.data.fid_dataset import check_num_passages
from keras_fido.data.fid_dataset import check_target_args
from keras_fido.data.fid_dataset import examples_dataset
from keras_fido.data.fid_example import has_passages
from keras_fido.data.fid_example import parse_fid_record
from keras_fido.data.json_records import iter_json_records

logger = logging.getLogger(__name__)

# The names `fid_json_builder` imports, from before the validator and the
# dataset options had modules of their own.
_ON_ERROR = ON_ERROR
_check_choice = check_choice
_check_num_passages = check_num_passages

# With on_error="skip", this many bad records are logged one by one per
# pass; the rest are only counted.
_MAX_LOGGED_ERRORS = 10


def read_fid_examples(
    path,
    num_passages=None,
    format="auto",
    on_error="raise",
    on_empty_ctxs="warn",
):
    """Streams the examples of a FiD json or json-lines file.

    Every record needs `"question"` (a string), `"answers"` (a list of
    strings; `[]` for a test-time file without references) and `"ctxs"`
    (a list of `{"title", "text", "score"?}` dicts, possibly empty).

    Args:
        path: str or path-like. A UTF-8 json array file, or a json-lines
            file (`.jsonl`); a `.gz` suffix reads it gzip-compressed.
        num_passages: int or `None`. Keep at most this many passages per
            example (after sorting by score). Defaults to `None` (all).
        format: `"auto"`, `"json"` or `"jsonl"`. `"auto"` decides from a
            `.jsonl` name or the first character of the file (`[` for a
            json array).
        on_error: `"raise"` or `"skip"`. What a bad record does: a line
            that is not json or not UTF-8, or a record with a missing or
            ill-typed field. `"skip"` leaves it out and logs a warning
            naming it (file, line and problem) for the first 10 per pass,
            then one line saying the rest are only counted, and the total
            skipped when the pass ends. Malformed json inside a json
            *array* always raises (the parser cannot find the next record);
            use json lines for files that need skipping. Defaults to
            `"raise"`.
        on_empty_ctxs: `"warn"` or `"raise"`. What a record without
            passages (an empty `"ctxs"` list, or only passages whose title
            and text are both empty) does. `"warn"` reads it, logging the
            first such record and the count at the end of each pass;
            `FiDOSeq2SeqLMPreprocessor` encodes its question alone.
            `"raise"` makes it a bad record (raised, or skipped with
            `on_error="skip"`). Defaults to `"warn"`.

    Returns:
        A generator yielding one dict per record, as returned by
        `parse_fid_record`: the record's keys (`"question"`, `"answers"`,
        and `"id"`, `"target"` or others when present) with `"ctxs"` as
        `{"title", "text", "score"?}` dicts sorted by score. The dicts can
        be passed to `FiDOSeq2SeqLMPreprocessor` and
        `FiDOSeq2SeqLM.generate()` as they are. The file is read as the
        generator is consumed.

    Raises:
        ValueError: now, for a bad argument; while iterating, for malformed
            json (naming the file and line), bytes that are not UTF-8
            (naming the file, byte offset and line), or a record with a
            missing or ill-typed field (naming the field, the record and its
            line), unless `on_error="skip"`.
        FileNotFoundError: while iterating, if `path` does not exist.

    Examples:
    ```python
    for example in read_fid_examples("dev.jsonl", num_passages=10):
        print(example["question"], example["answers"])

    # Leave out (and log) bad lines of a large, partly damaged file.
    examples = list(read_fid_examples("train.jsonl", on_error="skip"))
    ```
    """
    num_passages = check_num_passages(num_passages)
    check_choice("format", format, ("auto", "json", "jsonl"))
    check_choice("on_error", on_error, ON_ERROR)
    check_choice("on_empty_ctxs", on_empty_ctxs, ON_EMPTY_CTXS)
    return stream_fid_records(
        path, num_passages, format, on_error, on_empty_ctxs
    )


class _PassLog:
    """Counts and logs the skipped and passage-less records of one pass."""

    def __init__(self, path):
        self.path = path
        self.skipped = 0
        self.empty = 0

    def skip(self, error):
        self.skipped += 1
        if self.skipped <= _MAX_LOGGED_ERRORS:
            logger.warning("Skipping a bad record (on_error='skip'): %s", error)
        elif self.skipped == _MAX_LOGGED_ERRORS + 1:
            logger.warning(
                "More than %d bad records in %s: the rest are skipped "
                "without being listed; the total comes at the end of the "
                "pass.",
                _MAX_LOGGED_ERRORS,
                self.path,
            )

    def no_passages(self, where):
        self.empty += 1
        if self.empty == 1:
            logger.warning(
                "%s has no passages (an empty 'ctxs' list or only empty "
                "passages): its question is encoded alone. Records like it "
                "are counted at the end of the pass; pass "
                "on_empty_ctxs='raise' to reject them.",
                where,
            )

    def finish(self, read):
        if self.skipped:
            logger.warning(
                "Skipped %d bad record(s) of %s (on_error='skip'); read %d.",
                self.skipped,
                self.path,
                read,
            )
        if self.empty:
            logger.warning(
                "%d record(s) of %s have no passages; their questions are "
                "encoded alone.",
                self.empty,
                self.path,
            )


def stream_fid_records(
    path, num_passages, format, on_error, on_empty_ctxs, require_answers=True
):
    """The generator behind `read_fid_examples`, on checked arguments.

    `on_empty_ctxs=None` reads records without passages silently (for
    callers that report them themselves); `require_answers=False` reads
    retrieval-only records.
    """
    log = _PassLog(path)
    skip = log.skip if on_error == "skip" else None
    read = 0
    for index, line, record in iter_json_records(path, format, skip):
        where = f"record {index} (line {line}) of {path}"
        try:
            example = parse_fid_record(
                record, where, num_passages, require_answers
            )
            if on_empty_ctxs == "raise" and not has_passages(example):
                raise ValueError(
                    f"{where} has no passages: 'ctxs' must hold at least "
                    "one passage with a title or text (on_empty_ctxs="
                    f"'raise'). Received: ctxs={record.get('ctxs')!r}"
                )
        except ValueError as e:
            if skip is None:
                raise
            skip(e)
            continue
        if on_empty_ctxs == "warn" and not has_passages(example):
            log.no_passages(where)
        read += 1
        yield example
    log.finish(read)


def load_fid_json(
    path,
    num_passages=None,
    target_choice="first",
    seed=0,
    format="auto",
    validate=False,
    on_error="raise",
    on_empty_ctxs="warn",
):
    """Streams a FiD json or json-lines file as a `tf.data.Dataset`.

    The dataset is backed by a python generator
    (`tf.data.Dataset.from_generator`) that parses one record at a time, so
    the file is never loaded whole; json-lines files are read line by line
    and json arrays with an incremental parser. The file is read again on
    every pass over the dataset (use `.cache()` to keep it in memory).

    Passages are sorted by score, highest first, when every passage of a
    record has a `"score"` (ties keep the file order), then cut to
    `num_passages`. With `num_passages`, shorter lists are padded with empty
    titles and texts (score `0.0`) so every element has `P = num_passages`
    passages and the dataset batches with `.batch()`; empty passages are
    treated as missing by `FiDOSeq2SeqLMPreprocessor`. Without it, `P`
    varies per element. A record without passages is kept (its question
    is encoded alone) with a logged warning, unless `on_empty_ctxs="raise"`.

    The target is the record's `"target"` when present. Otherwise it comes
    from `"answers"`: the FiD reference code samples a random answer each
    time an example is used in training; here `target_choice="first"`
    (the default) takes `answers[0]` for determinism, and
    `target_choice="random"` samples uniformly. For pass `k` over the
    dataset (0-based), the sampler is seeded from `(seed, k)`, so runs are
    reproducible and targets still change from epoch to epoch. A record
    with no target and an empty answers list gets the target `""`.

    Args:
        path: str or path-like. A UTF-8 json array file, or a json-lines
            file (`.jsonl`); a `.gz` suffix reads it gzip-compressed.
        num_passages: int or `None`. Passages per example, `P`. Defaults to
            `None` (keep all, unpadded).
        target_choice: `"first"` or `"random"`. How to pick the target from
            `"answers"` when a record has no `"target"`. Defaults to
            `"first"`.
        seed: int. Seeds `target_choice="random"`. Defaults to `0`.
        format: `"auto"`, `"json"` or `"jsonl"`. `"auto"` decides from a
            `.jsonl` name or the first character of the file (`[` for a
            json array).
        validate: bool. If `True`, read the whole file once now (streaming,
            constant memory) so that any malformed or incomplete record
            raises a `ValueError` here rather than in the middle of
            training. Defaults to `False`: only the first record is checked
            now.
        on_error: `"raise"` or `"skip"`. `"skip"` leaves bad records out
            of every pass, logging them as `read_fid_examples` does.
            Defaults to `"raise"`.
        on_empty_ctxs: `"warn"` or `"raise"`, as in `read_fid_examples`.
            Defaults to `"warn"`.

    Returns:
        A `tf.data.Dataset` of dicts:
        `"question"` (string scalar), `"titles"` and `"texts"` (string
        `[P]`), `"scores"` (float32 `[P]`, `0.0` where a passage has no
        score), `"answers"` (string `[A]`, `A` varies), `"target"` (string
        scalar) and `"id"` (string scalar, `""` when the record has none;
        numbers are turned into strings). Because `"answers"` varies in
        length, batch with `dataset.ragged_batch(B)`, or drop it first:
        `dataset.map(lambda x: {k: v for k, v in x.items() if k !=
        "answers"}).batch(B)`.

    Raises:
        ValueError: for bad arguments, or a malformed or incomplete first
            record (every record with `validate=True`), naming the record,
            its line and the field. A bad record met while iterating the
            dataset stops it with a TensorFlow `InvalidArgumentError` that
            carries the same message (unless `on_error="skip"`).

    Examples:
    ```python
    ds = load_fid_json("train.jsonl", num_passages=20)
    ds = ds.shuffle(1000).ragged_batch(8)
    ds = ds.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
    reader.fit(ds)
    ```
    """
    num_passages = check_num_passages(num_passages)
    check_target_args(target_choice, seed)
    args = (path, num_passages, format, on_error, on_empty_ctxs)
    # Fail now, not mid-training, on a missing file or a bad first record.
    for _ in read_fid_examples(*args):
        if not validate:
            break
    return examples_dataset(
        lambda: read_fid_examples(*args), num_passages, target_choice, seed
    )


def write_fid_json(path, examples, format="auto"):
    """Writes FiD examples as a json array or a json-lines file, streaming.

    Each example is written as it comes (`ensure_ascii=False`, UTF-8), so
    `examples` can be a generator over more data than fits in memory.

    Args:
        path: str or path-like. The output file; a `.gz` suffix writes it
            gzip-compressed.
        examples: iterable of json-serializable dicts in the FiD format
            (`{"question", "answers", "ctxs", ...}`). They are written as
            given.
        format: `"auto"`, `"json"` or `"jsonl"`. `"auto"` writes json lines
            for a `.jsonl` (or `.jsonl.gz`) name and a json array otherwise.

    Returns:
        The number of examples written.

    Examples:
    ```python
    write_fid_json("dev.json", [{
        "question": "What is the capital of France?",
        "answers": ["Paris"],
        "ctxs": [{"title": "France", "text": "Paris is its capital."}],
    }])
    ```
    """
    if format not in ("auto", "json", "jsonl"):
        raise ValueError(
            "`format` must be one of ('auto', 'json', 'jsonl'). "
            f"Received: format={format!r}"
        )
    name = str(path)
    name = name[:-3] if name.endswith(".gz") else name
    if format == "auto":
        format = "jsonl" if name.endswith(".jsonl") else "json"
    opener = gzip.open if str(path).endswith(".gz") else open
    count = 0
    with opener(path, "wt", encoding="utf-8") as f:
        if format == "json":
            f.write("[")
        for i, example in enumerate(examples):
            if not isinstance(example, dict):
                raise ValueError(
                    f"`examples[{i}]` must be a dict. "
                    f"Received: type {type(example).__name__}"
                )
            text = json.dumps(example, ensure_ascii=False)
            if format == "json":
                f.write(("\n" if i == 0 else ",\n") + text)
            else:
                f.write(text + "\n")
            count += 1
        if format == "json":
            f.write("\n]\n" if count else "]\n")
    return count
