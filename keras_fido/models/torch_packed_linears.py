"""oneDNN linears over pre-packed weights in a captured torch decoding step.

A decoding step multiplies a few rows (batch x beams) by every weight
matrix of the decoder, so it is bound by how fast the matmuls stream the
weights. On CPU, torch's `matmul` (MKL) streams them at 7-10 GB/s for 8
rows on two cores, where oneDNN's inner product over a weight packed once
in its blocked layout streams 18-23 GB/s (768 x 2048 and 768 x 32128
kernels, float32). Inductor packs weights itself only under `freezing`,
and for float32 with static shapes it packs them for MKL, not oneDNN.

`pack_constant_matmuls` rewrites a graph captured by `torch.export`: each
`matmul` (or projection `einsum`) of activations by a weight — a chain of
dtype casts and reshapes over a captured constant — becomes
`keras_fido::packed_linear`, oneDNN's linear over a packed copy of that
weight held by the graph. The op is opaque to inductor, which calls it as
it is (inductor's own lowering of oneDNN's linear accepts only weights it
froze itself). The packed copies are float32 copies of the decoder's
weights: a compiled reader holds its decoder weights twice.
"""

import functools

import torch

aten = torch.ops.aten

# Ops between a captured weight and the matmul that only cast or view it.
_WEIGHT_VIEW_OPS = (
    aten.to.dtype_layout,
    aten.to.dtype,
    aten.reshape.default,
    aten.view.default,
    aten._to_copy.default,
)


@torch.library.custom_op("keras_fido::packed_linear", mutates_args=())
def packed_linear(inputs: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`inputs` `[M, K]` times the weight that `weight` packs
    (`PackedWeights.get`): `[M, N]`."""
    return torch.ops.mkldnn._linear_pointwise(
        inputs, weight, None, "none", [], ""
    )


@packed_linear.register_fake
def _packed_linear_shape(inputs, weight):
    return inputs.new_empty((inputs.shape[0], weight.shape[0]))


def onednn_available():
    """Whether torch can run oneDNN's float32 linear on this CPU."""
    return torch.backends.mkldnn.is_available() and hasattr(
        torch.ops.mkldnn, "_reorder_linear_weight"
    )


class PackedWeights:
    """Packed copies of a module's constant weights, one per weight tensor
    and view chain, shared by every graph of one reader."""

    def __init__(self):
        self.packed = {}

    def clear(self):
        self.packed.clear()

    def get(self, key, matrix, rows):
        """oneDNN's packing of `matrix` `[K, N]` (as `[N, K]`)."""
        if key not in self.packed:
            self.packed[key] = torch.ops.mkldnn._reorder_linear_weight(
                matrix.t().contiguous(), rows
            )
        return self.packed[key]


def pack_constant_matmuls(graph_module, rows, packed_weights):
    """Rewrites `graph_module` in place; returns how many matmuls now run
    as oneDNN linears. `rows` is the number of rows a step multiplies
    (batch x tokens), a hint for the packed layout."""
    graph = graph_module.graph
    count = 0
    for node in list(graph.nodes):
        match = _constant_matmul(graph_module, node)
        if match is None:
            continue
        inputs, (key, matrix) = match
        packed = packed_weights.get(key, matrix, rows)
        name = f"_onednn_weight_{count}"
        graph_module.register_buffer(name, packed, persistent=False)
        width = matrix.shape[0]
        with graph.inserting_before(node):
            flat = graph.call_function(
                aten.reshape.default, (inputs, [-1, width])
            )
            weight = graph.get_attr(name)
            product = graph.call_function(
                torch.ops.keras_fido.packed_linear.default, (flat, weight)
            )
            shape = list(node.meta["val"].shape)
            output = graph.call_function(aten.reshape.default, (product, shape))
        output.meta["val"] = node.meta["val"]
        node.replace_all_uses_with(output)
        graph.erase_node(node)
        count += 1
    if count:
        graph.eliminate_dead_code()
        graph_module.recompile()
    return count


def _constant_matmul(graph_module, node):
    """`(activations node, (key, weight [K, N]))` when `node` multiplies
    float32 activations' last axis by a captured float32 weight, else
    `None`."""
    if node.op != "call_function" or "val" not in node.meta:
        return None
    if node.target is aten.matmul.default and len(node.args) == 2:
        inputs, weight_node = node.args
        columns = None
    elif node.target is aten.einsum.default and len(node.args[1]) == 2:
        inputs, weight_node = node.args[1]
        columns = _projection_columns(node.args[0])
        if columns is None:
            return None
    else:
        return None
    if not isinstance(inputs, torch.fx.Node):
        return None
    value = inputs.meta.get("val")
    if value is None or value.dtype != torch.float32 or value.dim() < 2:
        return None
    constant = _constant(graph_module, weight_node)
    if constant is None:
        return None
    key, weight = constant
    if weight.dtype != torch.float32 or weight.shape[0] != value.shape[-1]:
        return None
    if columns is None and weight.dim() != 2:
        return None
    return inputs, (key, weight.reshape(weight.shape[0], -1))


def _projection_columns(equation):
    """For an einsum `"<x>d,d<w>-><x><w>"` (the activations' last axis
    contracted with the weight's first, every other axis kept in order),
    the weight's kept axes; else `None`."""
    equation = equation.replace(" ", "")
    if "->" not in equation or "." in equation:
        return None
    operands, output = equation.split("->")
    if operands.count(",") != 1:
        return None
    left, right = operands.split(",")
    letters = left + right[1:]
    if (
        not left
        or not right
        or left[-1] != right[0]
        or len(set(letters)) != len(letters)
        or output != left[:-1] + right[1:]
    ):
        return None
    return right[1:]


def _constant(graph_module, node):
    """`(key, tensor)` when `node` is a captured tensor seen through casts
    and reshapes, else `None`. The key names the tensor and the chain."""
    chain = []
    while isinstance(node, torch.fx.Node) and node.op == "call_function":
        if node.target not in _WEIGHT_VIEW_OPS:
            return None
        if any(isinstance(a, torch.fx.Node) for a in node.args[1:]):
            return None
        chain.append(node)
        node = node.args[0]
    if not isinstance(node, torch.fx.Node) or node.op != "get_attr":
        return None
    tensor = functools.reduce(getattr, node.target.split("."), graph_module)
    if not isinstance(tensor, torch.Tensor):
        return None
    key = [tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride())]
    with torch.no_grad():
        for op in reversed(chain):
            tensor = op.target(tensor, *op.args[1:], **op.kwargs)
            key.append((str(op.target), repr(op.args[1:]), repr(op.kwargs)))
    return tuple(key), tensor
