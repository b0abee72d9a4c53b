"""The one validator of FiD example dicts.

A FiD example is

```
{"question": str, "answers": [str], "target": str,
 "ctxs": [{"title": str, "text": str, "score": number}, ...]}
```

with `"passages"` accepted as an alias of `"ctxs"`. The FiD json and tfds
readers check records with `parse_fid_record`; the preprocessor checks the
example dicts it is called on with `example_fields`. Both use the same
passage and string checks.

The readers and the preprocessor name a bad field in the way their users
know it: a reader names a place in a file (`record 3 (line 4) of
train.jsonl['question'] must be a string`), the preprocessor a python
argument (`` `x[0]['question']` must be a python string``). The checks
take `argument=True` for the second form.
"""


def type_name(value):
    return type(value).__name__


def check_string(value, where, argument=False):
    """Returns `value` if it is a `str`, else raises a `ValueError`.

    Args:
        value: The value to check.
        where: str. Names the field, e.g. `"x[0]['question']"` or
            `"record 3 (line 4) of train.jsonl['question']"`.
        argument: bool. Whether `where` names a python argument (quoted in
            backticks, with `where=value` in the message) rather than a
            place in a file.
    """
    if isinstance(value, str):
        return value
    if argument:
        raise ValueError(
            f"`{where}` must be a python string. "
            f"Received: {where}={value!r} of type {type_name(value)}"
        )
    raise ValueError(
        f"{where} must be a string. "
        f"Received: {value!r} of type {type_name(value)}"
    )


def check_passage_list(passages, where, argument=False):
    """Returns `passages` if it is a list or tuple, else raises."""
    if not isinstance(passages, (list, tuple)):
        subject = f"`{where}`" if argument else where
        raise ValueError(
            f"{subject} must be a list of dicts with keys 'title' and "
            f"'text'. Received: type {type_name(passages)}"
        )
    return passages


def parse_passage(passage, where, argument=False):
    """Checks one passage; returns `{"title", "text"}` (and `"score"`).

    A passage is a dict with a string `"text"` and an optional string
    `"title"` (`""` when absent).

    In a file (`argument=False`) a `null` title is read as `""` and a
    `"score"` (a number or a numeric string) is kept as a float. An
    argument (`argument=True`) is checked as python code passes it: the
    title must be a string when given, and scores are not read.
    """
    if argument:
        _check_passage_argument(passage, where)
        title = check_string(
            passage.get("title", ""), f"{where}['title']", True
        )
        text = check_string(passage["text"], f"{where}['text']", True)
        return {"title": title, "text": text}
    _check_passage_record(passage, where)
    text = check_string(passage["text"], f"{where}['text']")
    title = passage.get("title")
    title = check_string("" if title is None else title, f"{where}['title']")
    parsed = {"title": title, "text": text}
    if passage.get("score") is not None:
        parsed["score"] = _parse_score(passage["score"], f"{where}['score']")
    return parsed


def _check_passage_argument(passage, where):
    if not isinstance(passage, dict) or "text" not in passage:
        received = (
            f"keys {sorted(passage.keys())}"
            if isinstance(passage, dict)
            else f"type {type_name(passage)}"
        )
        raise ValueError(
            f"`{where}` must be a dict with a 'text' key "
            f"(and optionally 'title'). Received: {received}"
        )


def _check_passage_record(passage, where):
    if not isinstance(passage, dict):
        raise ValueError(
            f"{where} must be a dict with keys 'title' and 'text'. "
            f"Received: type {type_name(passage)}"
        )
    if "text" not in passage:
        raise ValueError(
            f"{where} is missing the required key 'text'. "
            f"Received keys: {sorted(passage.keys())}"
        )


def _parse_score(score, where):
    try:
        if isinstance(score, bool):
            raise TypeError
        return float(score)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"{where} must be a number (or a numeric string). "
            f"Received: {score!r} of type {type_name(score)}"
        ) from None


def has_passages(example):
    """Whether a parsed example has a passage with a title or text."""
    return any(p["title"] or p["text"] for p in example["ctxs"])


def parse_fid_record(
    record, where="record", num_passages=None, require_answers=True
):
    """Validates one FiD record and puts its passages in order.

    Args:
        record: dict. One decoded FiD record.
        where: str. Names the record in error messages, e.g.
            `"record 3 (line 4) of train.jsonl"`.
        num_passages: int or `None`. Keep only the first passages (after
            sorting).
        require_answers: bool. Whether `"answers"` must be present. FiD
            files always carry it (an empty list in a test-time file
            without references); retrieval-only records, joined with
            answers from elsewhere, may leave it out (it becomes `[]`).

    Returns:
        A copy of the record with `"ctxs"` replaced by a list of
        `{"title", "text"}` dicts (plus `"score"` as a float where the
        record had one), sorted by score, highest first, when every passage
        has a score (ties keep the file order) and cut to `num_passages`.
        A `"passages"` key is accepted as an alias of `"ctxs"` and renamed.

    Raises:
        ValueError: naming the record and the field for a missing
            `"question"`, `"answers"` (with `require_answers`) or `"ctxs"`
            key or a value of the wrong type.
    """
    ctx_key = _check_record_keys(record, where, require_answers)
    check_string(record["question"], f"{where}['question']")
    answers = record.get("answers", [])
    if not isinstance(answers, (list, tuple)) or not all(
        isinstance(a, str) for a in answers
    ):
        raise ValueError(
            f"{where}['answers'] must be a list of strings. "
            f"Received: {answers!r}"
        )
    if record.get("target") is not None:
        check_string(record["target"], f"{where}['target']")
    ctxs = check_passage_list(record[ctx_key], f"{where}['{ctx_key}']")
    passages = [
        parse_passage(p, f"{where}['{ctx_key}'][{i}]")
        for i, p in enumerate(ctxs)
    ]
    if passages and all("score" in p for p in passages):
        # `sorted` is stable: equal scores keep their file order.
        passages = sorted(passages, key=lambda p: -p["score"])
    if num_passages is not None:
        passages = passages[:num_passages]
    parsed = {k: v for k, v in record.items() if k not in ("ctxs", "passages")}
    parsed["answers"] = list(answers)
    parsed["ctxs"] = passages
    return parsed


def _check_record_keys(record, where, require_answers):
    """Checks a record's required keys; returns its passages' key."""
    if not isinstance(record, dict):
        raise ValueError(
            f"{where} must be a json object (a dict). "
            f"Received: type {type_name(record)}"
        )
    keys = sorted(record.keys())
    required = ("question", "answers") if require_answers else ("question",)
    for key in required:
        if key not in record:
            raise ValueError(
                f"{where} is missing the required key '{key}'. "
                f"Received keys: {keys}"
            )
    ctx_key = "ctxs" if "ctxs" in record else "passages"
    if ctx_key not in record:
        raise ValueError(
            f"{where} is missing the required key 'ctxs' (the retrieved "
            f"passages). Received keys: {keys}"
        )
    return ctx_key


def example_fields(example, field, with_target=True):
    """Checks one example dict passed to the preprocessor.

    Unlike a file record, the passages may be left out (`None` or no
    `"passages"` / `"ctxs"` key: the question is encoded alone) and
    `"answers"` is optional.

    Args:
        example: The value to check, e.g. `x[0]` of a call.
        field: str. Names it in error messages, e.g. `"x[0]"`.
        with_target: bool. Whether to read the target.

    Returns:
        `(question, titles, texts, target)`: the question, the lists of
        passage titles and texts, and the target (`None` without
        `with_target`, or when the example has none).
    """
    if not isinstance(example, dict):
        raise ValueError(
            f"`{field}` must be an example dict. "
            f"Received: {field} of type {type_name(example)}"
        )
    if "question" not in example:
        raise ValueError(
            f"`{field}` must have a 'question' key. "
            f"Received keys: {sorted(example.keys())}"
        )
    question = check_string(example["question"], f"{field}['question']", True)
    key = "passages" if "passages" in example else "ctxs"
    passages = example.get(key, None)
    passages = [] if passages is None else passages
    check_passage_list(passages, f"{field}['{key}']", argument=True)
    passages = [
        parse_passage(p, f"{field}['{key}'][{i}]", argument=True)
        for i, p in enumerate(passages)
    ]
    target = example_target(example, field) if with_target else None
    titles = [p["title"] for p in passages]
    texts = [p["text"] for p in passages]
    return question, titles, texts, target


def example_target(example, field):
    """The target of an example dict: `"target"`, else the first answer.

    FiD samples an answer at random while training; the preprocessor is
    deterministic and takes the first. Returns `None` when there is
    neither a target nor an answer.
    """
    if example.get("target") is not None:
        return check_string(example["target"], f"{field}['target']", True)
    answers = example.get("answers", None)
    if answers is None:
        return None
    if not isinstance(answers, (list, tuple)):
        raise ValueError(
            f"`{field}['answers']` must be a list of strings. "
            f"Received: type {type_name(answers)}"
        )
    if not answers:
        return None
    return check_string(answers[0], f"{field}['answers'][0]", True)
