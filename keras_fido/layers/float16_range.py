"""Keeping T5 activations inside float16's finite range.

T5.1.1 checkpoints overflow float16: the feed-forward output and the
residual stream it is added to grow past float16's largest value (65504),
turn into `inf`, and the next RMS norm turns `inf` into `nan`. Under a
float16 compute dtype, `GatedGeluFeedForward` computes its output
projection in float32 and `FiDOTransformerLayer` forms every residual sum
in float32; both then clip to `[-FLOAT16_LIMIT, FLOAT16_LIMIT]` before
casting back to float16. Other compute dtypes never reach this code.
"""

from keras import ops

# float16's largest finite value less a margin, as HuggingFace's T5 clamps:
# the margin keeps a clipped value finite through one more addition.
FLOAT16_LIMIT = 65504.0 - 1000.0


def clip_to_float16(x):
    """`x` (any float dtype) clipped to `±FLOAT16_LIMIT`, as float16."""
    return ops.cast(ops.clip(x, -FLOAT16_LIMIT, FLOAT16_LIMIT), "float16")
