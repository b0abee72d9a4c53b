"""Attention projections run as one flat matmul over their stored kernel.

`MultiQueryAttention` keeps its projections as `EinsumDense` layers with
head axes in their kernels (`"bsd,dkh->bksh"` for keys and values,
`"btnh,nhd->btd"` for the output), which is what checkpoints store and
what the layers' own `call` computes. On XLA:CPU those einsums make XLA
transpose the whole kernel at every decoding step (the head axes make it
reorder the contraction), and a decoding step is bound by reading the
kernels once. Reshaping the kernel to `[d_in, -1]` and calling one plain
matmul reads it as stored and computes the same sums. The decoder-only
runs of `python -m keras_fido.benchmark --decoder-only --roofline`
(`docs/performance.md`, "Against the roofline") measure a decoding step
against the rate a plain matmul streams kernels at.

Only plain kernels take this path: a quantized, LoRA or biased layer is
called as itself.
"""

import keras
from keras import ops


def project_to_heads(dense, source):
    """`dense` (`"bsd,dkh->bksh"`) on `source` `[B, S, d]`.

    Returns `[B, heads, S, head_dim]`, the head-major layout of the K/V
    caches, exactly what `dense(source)` returns, laid out in memory in
    that order on every backend (torch's transpose is otherwise a view,
    which its attention matmuls would copy at every decoding step).
    """
    if not _plain_kernel(dense):
        return _contiguous(dense(source))
    width, heads, head_dim = dense.kernel.shape
    batch, length = ops.shape(source)[0], ops.shape(source)[1]
    projected = _flat_matmul(dense, source, width)
    projected = ops.reshape(projected, (batch, length, heads, head_dim))
    return _contiguous(ops.transpose(projected, (0, 2, 1, 3)))


def project_from_heads(dense, heads):
    """`dense` (`"btnh,nhd->btd"`) on `heads` `[B, T, n, head_dim]`.

    Returns `[B, T, d]`, exactly what `dense(heads)` returns.
    """
    if not _plain_kernel(dense):
        return dense(heads)
    num_heads, head_dim = dense.kernel.shape[0], dense.kernel.shape[1]
    width = num_heads * head_dim
    batch, length = ops.shape(heads)[0], ops.shape(heads)[1]
    return _flat_matmul(
        dense, ops.reshape(heads, (batch, length, width)), width
    )


def _flat_matmul(dense, inputs, width):
    """`inputs` `[B, T, width]` times `dense`'s kernel as `[width, -1]`."""
    kernel = ops.cast(dense.kernel, dense.compute_dtype)
    return ops.matmul(inputs, ops.reshape(kernel, (width, -1)))


def _contiguous(x):
    """`x` in its logical layout (XLA always lays tensors out so)."""
    if keras.config.backend() == "torch":
        return x.contiguous()
    return x


def _plain_kernel(dense):
    """Whether `dense` computes `inputs . kernel` with nothing else: no
    quantization, no LoRA, no bias."""
    return (
        dense.quantization_mode is None
        and not dense.lora_enabled
        and dense.bias is None
    )
