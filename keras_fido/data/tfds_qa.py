"""Questions and answers from tensorflow-datasets, joined with retrieval."""

import logging
import os
import re
import unicodedata

import numpy as np
import tensorflow_datasets as tfds

from keras_fido.data.fid_dataset import ON_EMPTY_CTXS
from keras_fido.data.fid_dataset import ON_ERROR
from keras_fido.data.fid_dataset import check_choice
from keras_fido.data.fid_dataset import check_num_passages
from keras_fido.data.fid_dataset import check_target_args
from keras_fido.data.fid_dataset import examples_dataset
from keras_fido.data.fid_example import has_passages
from keras_fido.data.fid_example import parse_fid_record
from keras_fido.data.fid_json import stream_fid_records

logger = logging.getLogger(__name__)

_ON_MISSING = ("raise", "skip")
# Where each known dataset keeps its question, answers and question id
# (`None`: no id). Nested features are written "parent/child".
_FIELDS = {
    "natural_questions_open": ("question", ("answer",), None),
    "trivia_qa": (
        "question",
        ("answer/value", "answer/aliases"),
        "question_id",
    ),
    "web_questions": ("question", ("answers",), None),
}
_EXAMPLES_SHOWN = 3


def _normalize_question(question):
    """The key that joins a question with its retrieval results."""
    question = unicodedata.normalize("NFKC", question).casefold()
    question = re.sub(r"\s+", " ", question).strip()
    return question.rstrip("?. ")


def load_tfds_qa(
    name,
    split,
    retrieval,
    data_dir=None,
    num_passages=None,
    on_missing="raise",
    target_choice="first",
    seed=0,
    question_key=None,
    answers_key=None,
    id_key=None,
    on_error="raise",
    on_empty_ctxs="warn",
):
    """Joins a prepared tfds QA dataset with retrieval results, for FiD.

    Reads the questions and answers of `split` of the tensorflow-datasets
    dataset `name` (which must already be prepared in `data_dir`: nothing
    is ever downloaded) and gives each question the passages retrieved for
    it in `retrieval`. The result has the element structure of
    `load_fid_json`, so it feeds `FiDOSeq2SeqLMPreprocessor` the same way.

    Known datasets and the features read:

    - `natural_questions_open`: question `question`, answers `answer`.
    - `trivia_qa/<config>` (e.g. `rc.nocontext`, `unfiltered.nocontext`):
      question `question`, answers `answer/value` then `answer/aliases`,
      id `question_id`.
    - `web_questions`: question `question`, answers `answers`.

    Other datasets need a string `question` feature and answers in
    `answers` or `answer` (or give `question_key`, `answers_key`,
    `id_key`). Empty and repeated answers are dropped (the TriviaQA test
    split has none).

    A question is joined with a retrieval record by id when both carry one
    and the ids are equal (a TriviaQA `question_id` against a retrieval
    `"id"`), else by its normalized text: unicode NFKC form, case-folded,
    runs of whitespace made one space, trailing `?`, `.` and spaces
    removed (so `"Who wrote Dune ?"` meets `"who wrote dune"`). When the
    text of several retrieval records normalizes the same, the first is
    used; a join by id whose question texts differ is logged.
    The joined examples (passages cut to `num_passages`) are held in
    memory; the retrieval file is streamed once, keeping only the records
    of the split's questions.

    Args:
        name: str. The tfds name, with its config where it has several:
            `"natural_questions_open"`, `"trivia_qa/rc.nocontext"`,
            `"web_questions"`, ...
        split: str. The tfds split, e.g. `"train"`, `"validation"` or a
            slice such as `"train[:1000]"`.
        retrieval: str, path-like or dict. A FiD json or json-lines file of
            `{"question", "ctxs", "id"?}` records (`"answers"` optional and
            ignored: answers come from tfds), or a dict mapping a question
            to its list of `{"title", "text", "score"?}` passages.
        data_dir: str or `None`. Where the tfds dataset is prepared.
            Defaults to `None`: tfds' default (`~/tensorflow_datasets` or
            `$TFDS_DATA_DIR`).
        num_passages: int or `None`. Passages per example, `P`, sorted by
            score and padded as in `load_fid_json`. Defaults to `None`
            (keep all, unpadded).
        on_missing: `"raise"` or `"skip"`. What questions without
            retrieval results do: `"raise"` raises a `ValueError` giving
            their count and a few of them; `"skip"` leaves them out and logs
            the count. Defaults to `"raise"`.
        target_choice: `"first"` or `"random"`, as in `load_fid_json`.
            Defaults to `"first"`.
        seed: int. Seeds `target_choice="random"`. Defaults to `0`.
        question_key: str or `None`. The question feature ("parent/child"
            for nested ones). Defaults to the table above.
        answers_key: str, tuple of str or `None`. The answer feature(s),
            each a string or a sequence of strings, concatenated. Defaults
            to the table above.
        id_key: str or `None`. A question id feature to join on. Defaults
            to the table above (none for unknown datasets).
        on_error: `"raise"` or `"skip"`. Bad records in the retrieval file,
            as in `read_fid_examples`. Defaults to `"raise"`.
        on_empty_ctxs: `"warn"` or `"raise"`. A question whose retrieval
            record has no passages is kept (encoded alone) with a logged
            warning, or raises. Defaults to `"warn"`.

    Returns:
        A `tf.data.Dataset` of dicts with the keys and shapes of
        `load_fid_json`: `"question"` (the tfds question), `"titles"`,
        `"texts"`, `"scores"`, `"answers"` (from tfds), `"target"` and
        `"id"` (the tfds id, else the retrieval record's, else `""`).

    Raises:
        FileNotFoundError: if the dataset is not prepared in `data_dir`
            (the message says how to prepare it), or `retrieval` names a
            missing file.
        ValueError: for a bad argument, an unknown split or feature, a
            malformed retrieval record, questions without retrieval results
            (with `on_missing="raise"`), or when no question at all has
            retrieval results.

    Examples:
    ```python
    # Once: tfds build natural_questions_open --data_dir ~/tfds
    ds = load_tfds_qa(
        "natural_questions_open", "validation",
        retrieval="nq_dev_retrieved.jsonl", data_dir="~/tfds",
        num_passages=20)
    ds = ds.ragged_batch(8).map(preprocessor)

    # Retrieval results held in memory:
    ds = load_tfds_qa("web_questions", "test", retrieval={
        "who is the president of peru?": [
            {"title": "Peru", "text": "...", "score": 12.5}],
    }, on_missing="skip")
    ```
    """
    num_passages = check_num_passages(num_passages)
    check_choice("on_missing", on_missing, _ON_MISSING)
    check_choice("on_error", on_error, ON_ERROR)
    check_choice("on_empty_ctxs", on_empty_ctxs, ON_EMPTY_CTXS)
    check_target_args(target_choice, seed)
    if not isinstance(retrieval, (str, os.PathLike, dict)):
        raise ValueError(
            "`retrieval` must be a path to a FiD json file or a dict mapping "
            "questions to passage lists. Received: type "
            f"{type(retrieval).__name__}"
        )

    questions = _read_tfds_questions(
        name, split, data_dir, question_key, answers_key, id_key
    )
    wanted_ids = {q["id"] for q in questions if q["id"]}
    wanted_texts = {_normalize_question(q["question"]) for q in questions}
    by_id, by_text = _index_retrieval(
        retrieval, num_passages, on_error, wanted_ids, wanted_texts
    )

    examples, missing, renamed = _join(questions, by_id, by_text)
    source = _describe(retrieval)
    _report_missing(name, split, source, len(questions), missing, on_missing)
    if renamed:
        logger.warning(
            "%d question(s) of %s/%s were joined by id with a retrieval "
            "record whose question text differs, e.g. id %r: %r.",
            len(renamed),
            name,
            split,
            *renamed[0],
        )
    _check_passages(examples, name, split, source, on_empty_ctxs)
    return examples_dataset(lambda: examples, num_passages, target_choice, seed)


def _join(questions, by_id, by_text):
    """Gives each question its retrieval record: by id, else by text.

    Returns the joined examples, the questions without a record, and the
    `(id, question)` of joins by id whose question texts differ.
    """
    examples, missing, renamed = [], [], []
    for question in questions:
        found = by_id.get(question["id"]) if question["id"] else None
        if found is None:
            found = by_text.get(_normalize_question(question["question"]))
        elif _normalize_question(found["question"]) != _normalize_question(
            question["question"]
        ):
            renamed.append((question["id"], question["question"]))
        if found is None:
            missing.append(question["question"])
            continue
        examples.append(
            {
                "question": question["question"],
                "answers": question["answers"],
                "ctxs": found["ctxs"],
                "id": question["id"] or found.get("id"),
            }
        )
    return examples, missing, renamed


def _read_tfds_questions(
    name, split, data_dir, question_key, answers_key, id_key
):
    """The `{"question", "answers", "id"}` of a prepared tfds split."""
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        where = data_dir if data_dir is not None else "the default data_dir"
        dir_arg = f" --data_dir={data_dir}" if data_dir is not None else ""
        dir_kwarg = f", data_dir={data_dir!r}" if data_dir is not None else ""
        raise FileNotFoundError(
            f"The tfds dataset {name!r} is not prepared in {where} (looked "
            f"in {builder.data_path}); keras_fido never downloads it. "
            f"Prepare it once with `tfds build {name}{dir_arg}` or "
            f"`tfds.builder({name!r}{dir_kwarg}).download_and_prepare()`, "
            "then call again with the same `data_dir`."
        )
    splits = sorted(builder.info.splits.keys())
    if re.fullmatch(r"\w+", split) and split not in splits:
        raise ValueError(
            f"`split` must be one of the splits of {name!r}: {splits}. "
            f"Received: split={split!r}"
        )
    base = name.split("/")[0].split(":")[0]
    default_question, default_answers, default_id = _FIELDS.get(
        base, ("question", None, None)
    )
    features = builder.info.features
    question_key = question_key or default_question
    answers_key = answers_key or default_answers
    if answers_key is None:
        answers_key = next(
            ((k,) for k in ("answers", "answer") if k in features.keys()),
            ("answers",),
        )
    if isinstance(answers_key, str):
        answers_key = (answers_key,)
    id_key = id_key or default_id
    keys = [question_key, *answers_key] + ([id_key] if id_key else [])
    for key in keys:
        _check_feature(features, key, name)

    decoders = tfds.decode.PartialDecoding(_decode_tree(keys))
    dataset = builder.as_dataset(
        split=split, shuffle_files=False, decoders=decoders
    )
    questions = []
    for example in tfds.as_numpy(dataset):
        answers = []
        for key in answers_key:
            for answer in _strings(_get(example, key)):
                if answer and answer not in answers:
                    answers.append(answer)
        (question,) = _strings(_get(example, question_key))
        example_id = _strings(_get(example, id_key))[0] if id_key else ""
        questions.append(
            {"question": question, "answers": answers, "id": example_id}
        )
    return questions


def _check_feature(features, key, name):
    node = features
    for part in key.split("/"):
        names = list(node.keys()) if hasattr(node, "keys") else []
        if part not in names:
            raise ValueError(
                f"The tfds dataset {name!r} has no feature {key!r}. "
                f"Expected one of its features, 'parent/child' for nested "
                f"ones. Received: {key!r}; features here: {sorted(names)}"
            )
        node = node[part]


def _decode_tree(keys):
    tree = {}
    for key in keys:
        *parents, leaf = key.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = True
    return tree


def _get(example, key):
    for part in key.split("/"):
        example = example[part]
    return example


def _strings(value):
    values = np.asarray(value).reshape(-1).tolist()
    return [
        v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values
    ]


def _describe(retrieval):
    if isinstance(retrieval, dict):
        return "the retrieval dict"
    return os.fspath(retrieval)


def _index_retrieval(retrieval, num_passages, on_error, wanted_ids, wanted):
    """Retrieval records of the wanted questions, by id and by text."""
    if isinstance(retrieval, dict):
        records = (
            parse_fid_record(
                {"question": question, "ctxs": ctxs},
                f"retrieval[{question!r}]",
                num_passages,
                require_answers=False,
            )
            for question, ctxs in retrieval.items()
        )
    else:
        records = stream_fid_records(
            retrieval, num_passages, "auto", on_error, None, False
        )
    by_id, by_text = {}, {}
    repeated = 0
    for record in records:
        record_id = record.get("id")
        record_id = "" if record_id is None else str(record_id)
        if record_id in wanted_ids and record_id not in by_id:
            by_id[record_id] = record
        text = _normalize_question(record["question"])
        if text in wanted:
            if text in by_text:
                repeated += 1
            else:
                by_text[text] = record
    if repeated:
        logger.warning(
            "%d retrieval record(s) of %s repeat an earlier question (after "
            "normalization); the first record of each question is used.",
            repeated,
            _describe(retrieval),
        )
    return by_id, by_text


def _report_missing(name, split, source, total, missing, on_missing):
    if not missing:
        return
    shown = ", ".join(repr(q) for q in missing[:_EXAMPLES_SHOWN])
    summary = (
        f"{len(missing)} of the {total} questions of {name}/{split} have no "
        f"retrieval results in {source}, e.g. {shown}. Questions are matched "
        "by id where both sides have one, else by normalized text."
    )
    if len(missing) == total:
        raise ValueError(
            f"{summary} None matched: is `retrieval` for this dataset and "
            "split?"
        )
    if on_missing == "raise":
        raise ValueError(f"{summary} Pass on_missing='skip' to leave them out.")
    logger.warning("%s They are skipped (on_missing='skip').", summary)


def _check_passages(examples, name, split, source, on_empty_ctxs):
    empty = [e["question"] for e in examples if not has_passages(e)]
    if not empty:
        return
    message = (
        f"{len(empty)} question(s) of {name}/{split} have no passages in "
        f"{source}, e.g. {empty[0]!r}"
    )
    if on_empty_ctxs == "raise":
        raise ValueError(
            f"{message}. Every question needs at least one passage with a "
            "title or text (on_empty_ctxs='raise')."
        )
    logger.warning("%s: their questions are encoded alone.", message)
