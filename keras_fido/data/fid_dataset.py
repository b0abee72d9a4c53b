"""FiD examples as a `tf.data.Dataset`, and the options of the readers.

Shared by the FiD json reader (`fid_json.py`) and the tfds reader
(`tfds_qa.py`), so both give the same element structure and check their
common arguments the same way.
"""

import random

import numpy as np
import tensorflow as tf

from keras_fido.utils.checks import check_positive_int

TARGET_CHOICES = ("first", "random")
ON_ERROR = ("raise", "skip")
ON_EMPTY_CTXS = ("warn", "raise")


def check_choice(name, value, choices):
    """Raises a `ValueError` naming `name` unless `value` is in `choices`."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {choices}. Received: {name}={value!r}"
        )


def check_num_passages(num_passages):
    """`None` (keep all passages) or a positive int."""
    if num_passages is None:
        return None
    return check_positive_int("num_passages", num_passages)


def check_target_args(target_choice, seed):
    check_choice("target_choice", target_choice, TARGET_CHOICES)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")


def examples_dataset(make_examples, num_passages, target_choice, seed):
    """A `tf.data.Dataset` of FiD elements from parsed examples.

    Shared by the FiD json and tfds loaders, so both give the same element
    structure (see `load_fid_json`).

    Args:
        make_examples: callable returning a fresh iterable of parsed
            examples (as from `parse_fid_record`); called once per pass.
        num_passages: int or `None`. Pad or keep the passages, as in
            `load_fid_json` (the examples are already cut).
        target_choice: `"first"` or `"random"`.
        seed: int. Seeds `target_choice="random"`, per pass.

    Returns:
        A `tf.data.Dataset` backed by a python generator.
    """
    seed = int(seed)
    passes = [0]

    def generate():
        rng = random.Random(f"{seed}:{passes[0]}")
        passes[0] += 1
        for example in make_examples():
            yield _to_element(example, num_passages, target_choice, rng)

    size = num_passages  # `None` means a variable number of passages.
    signature = {
        "question": tf.TensorSpec([], tf.string),
        "titles": tf.TensorSpec([size], tf.string),
        "texts": tf.TensorSpec([size], tf.string),
        "scores": tf.TensorSpec([size], tf.float32),
        "answers": tf.TensorSpec([None], tf.string),
        "target": tf.TensorSpec([], tf.string),
        "id": tf.TensorSpec([], tf.string),
    }
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def _to_element(example, num_passages, target_choice, rng):
    """Turns a parsed record into the numpy arrays of one dataset element."""
    ctxs = example["ctxs"]
    titles = [p["title"] for p in ctxs]
    texts = [p["text"] for p in ctxs]
    scores = [p.get("score", 0.0) for p in ctxs]
    if num_passages is not None:
        missing = num_passages - len(ctxs)
        titles += [""] * missing
        texts += [""] * missing
        scores += [0.0] * missing
    answers = example["answers"]
    target = example.get("target")
    if target is None:
        if not answers:
            target = ""
        elif target_choice == "random":
            target = rng.choice(answers)
        else:
            target = answers[0]
    example_id = example.get("id")
    example_id = "" if example_id is None else str(example_id)
    return {
        "question": _encode(example["question"]),
        "titles": np.array([_encode(t) for t in titles], dtype=object),
        "texts": np.array([_encode(t) for t in texts], dtype=object),
        "scores": np.array(scores, dtype=np.float32),
        "answers": np.array([_encode(a) for a in answers], dtype=object),
        "target": _encode(target),
        "id": _encode(example_id),
    }


def _encode(text):
    return text.encode("utf-8")
