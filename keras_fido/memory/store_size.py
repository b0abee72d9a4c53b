"""What a passage memory store costs on disk, with the arithmetic.

Per passage: `tokens x (width x value bytes [+ 4-byte scale for int8] +
4-byte id) + 4-byte length`. At FiD's Wikipedia, 21M passages of 256
tokens (`wikipedia_size_table()`):

| width | dtype | bytes / passage | total |
|---|---|---|---|
| base (768) | float16 | 394,244 | 8.28 TB |
| base (768) | int8 | 198,660 | 4.17 TB |
| large (1024) | float16 | 525,316 | 11.03 TB |
| large (1024) | int8 | 264,196 | 5.55 TB |

A LUMEN reader stores only the passage block, `passage_length -
question_length` positions (224 of 256 with the `lumen_*` presets'
32-position question block): 7/8 of these figures.
"""

from keras_fido.memory.memory_codec import SCALE_BYTES
from keras_fido.memory.memory_codec import VALUE_BYTES
from keras_fido.memory.memory_codec import check_store_dtype
from keras_fido.utils.checks import check_positive_int

# Per token: its id (int32); per passage: its length (int32).
TOKEN_ID_BYTES = 4
LENGTH_BYTES = 4


def bytes_per_passage(passage_tokens, hidden_dim, dtype="float16"):
    """Bytes one passage takes in a store: `passage_tokens` vectors of
    `hidden_dim` values (2 bytes each for float16 / bfloat16, 1 for int8
    plus a 4-byte scale per vector), an int32 id per token and an int32
    length. `MemoryStore.bytes_per_passage` is this for a built store."""
    passage_tokens = check_positive_int("passage_tokens", passage_tokens)
    hidden_dim = check_positive_int("hidden_dim", hidden_dim)
    dtype = check_store_dtype(dtype)
    per_token = hidden_dim * VALUE_BYTES[dtype] + SCALE_BYTES[dtype]
    return passage_tokens * (per_token + TOKEN_ID_BYTES) + LENGTH_BYTES


def store_size_estimate(num_passages, passage_tokens, hidden_dim, dtype):
    """The size of a store, with its arithmetic.

    Args:
        num_passages: int. Passages in the collection.
        passage_tokens: int. Positions of a passage block.
        hidden_dim: int. The encoder's width.
        dtype: `"float16"`, `"bfloat16"` or `"int8"`.

    Returns:
        A dict: `bytes_per_passage`, `total_bytes`, `total_gib`,
        `total_tb` (10^12 bytes) and `arithmetic`, the formula with the
        numbers in.

    Examples:
    ```python
    store_size_estimate(21_000_000, 256, 768, "float16")["total_tb"]
    # 8.28: 21M x (256 x (768 x 2 + 4) + 4) bytes
    ```
    """
    num_passages = check_positive_int("num_passages", num_passages)
    per_passage = bytes_per_passage(passage_tokens, hidden_dim, dtype)
    total = num_passages * per_passage
    value = f"{hidden_dim} x {VALUE_BYTES[dtype]}"
    if SCALE_BYTES[dtype]:
        value += f" + {SCALE_BYTES[dtype]} (scale)"
    arithmetic = (
        f"{num_passages:,} passages x ({passage_tokens} tokens x ({value} "
        f"+ {TOKEN_ID_BYTES} (id)) + {LENGTH_BYTES} (length)) = "
        f"{num_passages:,} x {per_passage:,} B = {total:,} B "
        f"= {total / 1e12:.2f} TB ({total / 2**30:,.0f} GiB)"
    )
    return {
        "bytes_per_passage": per_passage,
        "total_bytes": total,
        "total_gib": total / 2**30,
        "total_tb": total / 1e12,
        "arithmetic": arithmetic,
    }


def wikipedia_size_table(num_passages=21_000_000, passage_tokens=256):
    """Markdown table of `store_size_estimate` for the base (768) and
    large (1024) widths, float16 and int8, at FiD's Wikipedia (21M
    passages of 100 words, read as 256 tokens)."""
    lines = [
        "| width | dtype | bytes / passage | total | arithmetic |",
        "|---|---|---|---|---|",
    ]
    for name, width in (("base", 768), ("large", 1024)):
        for dtype in ("float16", "int8"):
            size = store_size_estimate(
                num_passages, passage_tokens, width, dtype
            )
            lines.append(
                f"| {name} ({width}) | {dtype} | "
                f"{size['bytes_per_passage']:,} | {size['total_tb']:.2f} TB "
                f"| {size['arithmetic']} |"
            )
    return "\n".join(lines)
