"""The encoder's and decoder's attention masks."""

import numpy as np
from keras import ops

from keras_fido.layers.attention_masks import causal_self_attention_mask
from keras_fido.layers.attention_masks import cross_attention_mask
from keras_fido.layers.attention_masks import passage_self_attention_mask


def test_causal_mask_lets_a_query_see_itself_and_the_past():
    mask = ops.convert_to_numpy(causal_self_attention_mask(3, 3))
    np.testing.assert_array_equal(mask[0], np.tril(np.ones((3, 3), bool)))


def test_causal_mask_with_an_offset_sees_the_cache_up_to_its_position():
    mask = ops.convert_to_numpy(causal_self_attention_mask(1, 4, 2))
    np.testing.assert_array_equal(mask, [[[True, True, True, False]]])


def test_causal_mask_hides_padded_keys():
    padding = np.array([[1, 1, 0]], "int32")
    mask = ops.convert_to_numpy(causal_self_attention_mask(3, 3, 0, padding))
    assert not mask[0, :, 2].any()
    np.testing.assert_array_equal(mask[0, :, :2], [[1, 0], [1, 1], [1, 1]])


def test_passage_mask_folds_passages_into_the_batch():
    padding = np.ones((2, 3, 4), "int32")
    padding[1, 2, 1:] = 0
    mask = ops.convert_to_numpy(passage_self_attention_mask(padding))
    assert mask.shape == (6, 1, 4)
    np.testing.assert_array_equal(mask[5, 0], [True, False, False, False])


def test_cross_mask_lays_passages_end_to_end():
    padding = np.ones((2, 3, 4), "int32")
    padding[0, 1, :] = 0
    mask = ops.convert_to_numpy(cross_attention_mask(padding))
    assert mask.shape == (2, 1, 12)
    assert not mask[0, 0, 4:8].any() and mask[0, 0, 8:].all()
    assert cross_attention_mask(None) is None
