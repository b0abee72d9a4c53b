"""Store sizes: bytes per passage and the 21M-passage Wikipedia
extrapolation, with the arithmetic."""

import pytest

from keras_fido.memory import bytes_per_passage
from keras_fido.memory import store_size_estimate
from keras_fido.memory import wikipedia_size_table


def test_bytes_per_passage_counts_vectors_scales_ids_and_length():
    # 256 x (768 x 2 + 4) + 4: float16 vectors, int32 ids, int32 length.
    assert bytes_per_passage(256, 768, "float16") == 394_244
    assert bytes_per_passage(256, 768, "bfloat16") == 394_244
    # 256 x (768 x 1 + 4 + 4) + 4: int8 values, a float32 scale per vector.
    assert bytes_per_passage(256, 768, "int8") == 198_660


def test_wikipedia_estimate_shows_its_arithmetic():
    base = store_size_estimate(21_000_000, 256, 768, "float16")
    assert base["total_bytes"] == 21_000_000 * 394_244
    assert round(base["total_tb"], 2) == 8.28
    assert "21,000,000 passages x (256 tokens x (768 x 2" in base["arithmetic"]
    large = store_size_estimate(21_000_000, 256, 1024, "int8")
    assert large["bytes_per_passage"] == 256 * (1024 + 4 + 4) + 4
    assert "(scale)" in large["arithmetic"]


def test_table_has_base_and_large_in_float16_and_int8():
    table = wikipedia_size_table()
    assert table.count("\n") == 5  # header, rule, 4 rows
    assert "| base (768) | int8 | 198,660 |" in table
    assert "| large (1024) | float16 | 525,316 |" in table


@pytest.mark.parametrize(
    "args, match",
    [
        ((0, 256, 768, "float16"), "`num_passages` must be"),
        ((10, 256, 768, "float32"), "`dtype` must be one of"),
        ((10, -1, 768, "int8"), "`passage_tokens` must be"),
    ],
)
def test_bad_sizes_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        store_size_estimate(*args)
