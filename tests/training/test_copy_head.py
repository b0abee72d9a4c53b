"""`with_copy_head` keeps a reader's weights and adds the head."""

import numpy as np
import pytest
from keras import ops

from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.testing.fido_models import tiny_backbone
from keras_fido.training import with_copy_head


def test_every_weight_is_carried_over():
    reader = FiDOSeq2SeqLM(tiny_backbone("fido", vocabulary_size=40))
    copied = with_copy_head(reader)
    assert copied.backbone.copy_attention
    old = {w.path: ops.convert_to_numpy(w) for w in reader.backbone.weights}
    new = {w.path: ops.convert_to_numpy(w) for w in copied.backbone.weights}
    assert set(new) - set(old) == {
        "copy_head/gate/kernel",
        "copy_head/gate/bias",
        "copy_head/follow_gate/kernel",
        "copy_head/follow_gate/bias",
        "copy_head/candidate_embedding",
        "copy_head/candidate_kernel",
        "copy_head/key/kernel",
        "copy_head/previous_key/kernel",
        "copy_head/next_key/kernel",
        "copy_head/query/kernel",
    }
    for path, value in old.items():
        np.testing.assert_array_equal(new[path], value, err_msg=path)
    assert copied.preprocessor is reader.preprocessor


def test_a_reader_with_the_head_is_returned_as_it_is():
    reader = FiDOSeq2SeqLM(
        tiny_backbone("fid", vocabulary_size=40, copy_attention=True)
    )
    assert with_copy_head(reader) is reader


def test_refuses_what_is_not_a_reader():
    with pytest.raises(ValueError, match="FiDOSeq2SeqLM"):
        with_copy_head(tiny_backbone("fid", vocabulary_size=40))
