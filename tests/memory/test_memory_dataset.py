"""lookup_passage_memory: a tf.data pipeline of questions and passage ids
yields the preprocessor's batches, plus the stored passage memory."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_fido.memory import lookup_passage_memory

QUESTIONS = ["what is the capital of italy", "where is oslo", "who is there"]
PASSAGE_IDS = [["rome", "paris"], ["5", ""], ["", ""]]  # "": no passage
TARGETS = ["rome", "north", "nobody"]


def memory_dataset(reader, store, with_target, on_missing="raise"):
    features = {"question": QUESTIONS, "passage_ids": PASSAGE_IDS}
    if with_target:
        features["target"] = TARGETS
    ds = tf.data.Dataset.from_tensor_slices(features).batch(3)
    return lookup_passage_memory(ds, reader, store, on_missing)


def text_batch(case):
    examples = [
        case.text_example(q, [i for i in ids if i])
        for q, ids in zip(QUESTIONS, PASSAGE_IDS)
    ]
    for example, target in zip(examples, TARGETS):
        example["target"] = target
    return examples


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_batches_are_the_preprocessors(reader, store, case):
    x, y, weight = next(iter(memory_dataset(reader, store, True)))
    expected_x, expected_y, expected_weight = reader.preprocessor(
        text_batch(case)
    )
    for key, value in expected_x.items():
        np.testing.assert_array_equal(
            x[key].numpy(), ops.convert_to_numpy(value), err_msg=key
        )
    np.testing.assert_array_equal(y.numpy(), ops.convert_to_numpy(expected_y))
    np.testing.assert_array_equal(
        weight.numpy(), ops.convert_to_numpy(expected_weight)
    )
    # The memory is the store's, the empty slots its blank.
    memory = x["passage_memory"].numpy()
    assert memory.shape == (3, case.num_passages, 32, store.hidden_dim)
    rows, _ = store.rows(np.array([["rome", "paris", ""]]))
    np.testing.assert_array_equal(
        memory[0], store.gather(rows)["passage_memory"][0]
    )


def test_without_targets_yields_inputs_only(reader, store):
    x = next(iter(memory_dataset(reader, store, False)))
    assert sorted(x) == [
        "encoder_padding_mask",
        "encoder_token_ids",
        "passage_memory",
    ]


def test_missing_id_fails_the_pipeline_naming_it(reader, store):
    ds = tf.data.Dataset.from_tensor_slices(
        {"question": ["q"], "passage_ids": [["paris", "nowhere"]]}
    ).batch(1)
    with pytest.raises(Exception, match="nowhere"):
        next(iter(lookup_passage_memory(ds, reader, store)))
    x = next(iter(lookup_passage_memory(ds, reader, store, "skip")))
    mask = x["encoder_padding_mask"].numpy()
    assert mask[0, 0].any() and not mask[0, 1].any()


def test_ragged_ids_are_padded_to_the_slots(reader, store, case):
    ds = tf.data.Dataset.from_tensor_slices(
        {
            "question": ["q", "r"],
            "passage_ids": tf.ragged.constant(
                [["paris"], ["rome", "lyon", "bern", "berlin"]]
            ),
        }
    ).batch(2)
    x = next(iter(lookup_passage_memory(ds, reader, store)))
    assert x["encoder_token_ids"].shape[1] == case.num_passages
    np.testing.assert_array_equal(
        x["encoder_padding_mask"].numpy().any(axis=-1),
        [[True, False, False], [True, True, True]],
    )


def test_unbatched_dataset_is_refused(reader, store):
    ds = tf.data.Dataset.from_tensor_slices(
        {"question": ["q"], "passage_ids": [["paris"]]}
    )
    with pytest.raises(ValueError, match="dataset.batch"):
        lookup_passage_memory(ds, reader, store)
