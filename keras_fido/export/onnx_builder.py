"""A small ONNX graph builder with the T5.1.1 blocks FiD and FiDO use.

The graphs are written node by node from numpy weights, so they are the
same whichever Keras backend the weights come from. Every block mirrors a
keras_fido layer: `rms_norm` is `T5LayerNorm`, `gated_gelu` is
`GatedGeluFeedForward` (tanh GELU), `attention` is
`MultiQueryAttention.attend` (no logit scaling, float32 softmax, masked
logits set to -1e9).
"""

import math

import numpy as np
from onnx import TensorProto
from onnx import helper
from onnx import numpy_helper

OPSET = 17
# `keras_fido.layers.multi_query_attention.MASK_LOGIT`.
MASK_LOGIT = -1e9


class GraphBuilder:
    """Collects nodes, initializers, inputs and outputs of one graph."""

    def __init__(self, name):
        self.name = name
        self.nodes = []
        self.initializers = []
        self.inputs = []
        self.outputs = []
        self._count = 0
        self._constants = {}
        self._weights = set()

    def fresh(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    def input(self, name, elem_type, shape):
        self.inputs.append(
            helper.make_tensor_value_info(name, elem_type, shape)
        )
        return name

    def output(self, value, name, elem_type, shape):
        self.op("Identity", [value], output=name)
        self.outputs.append(
            helper.make_tensor_value_info(name, elem_type, shape)
        )

    def weight(self, name, array):
        """A float32 initializer named after the weight it holds; a weight
        used twice (a block run over two inputs) is stored once."""
        if name in self._weights:
            return name
        self._weights.add(name)
        array = np.ascontiguousarray(array, dtype=np.float32)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def const(self, value, dtype=np.int64):
        """A small constant initializer, shared by equal values."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            name = self.fresh("const")
            self.initializers.append(numpy_helper.from_array(array, name))
            self._constants[key] = name
        return self._constants[key]

    def op(self, op_type, inputs, output=None, **attributes):
        output = output or self.fresh(op_type.lower())
        self.nodes.append(
            helper.make_node(
                op_type,
                inputs,
                [output],
                name=self.fresh(f"{op_type}_node"),
                **attributes,
            )
        )
        return output

    def dim(self, value, axis):
        """The size of `value` along `axis`, as an int64 `[1]` tensor."""
        shape = self.op("Shape", [value])
        return self.op("Gather", [shape, self.const([axis])], axis=0)

    def scalar(self, value):
        """A `[1]` int64 tensor as a scalar (for `Range`)."""
        return self.op("Squeeze", [value, self.const([0])])

    def concat_ints(self, parts):
        """An int64 `[n]` shape from ints and `[1]` tensors."""
        names = [self.const([p]) if isinstance(p, int) else p for p in parts]
        return self.op("Concat", names, axis=0)

    def reshape(self, value, parts):
        return self.op("Reshape", [value, self.concat_ints(parts)])

    def model(self):
        graph = helper.make_graph(
            self.nodes,
            self.name,
            self.inputs,
            self.outputs,
            initializer=self.initializers,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_operatorsetid("", OPSET)],
            producer_name="keras_fido",
        )
        model.ir_version = min(model.ir_version, 9)
        return model


def rms_norm(g, x, scale, epsilon):
    """`T5LayerNorm`: `x / sqrt(mean(x^2) + eps) * scale`."""
    square = g.op("Pow", [x, g.const(2.0, np.float32)])
    mean = g.op("ReduceMean", [square], axes=[-1], keepdims=1)
    root = g.op("Sqrt", [g.op("Add", [mean, g.const(epsilon, np.float32)])])
    return g.op("Mul", [g.op("Div", [x, root]), g.weight(*scale)])


def gelu_tanh(g, x):
    """The tanh approximation of GELU, as keras' `approximate=True`."""
    cube = g.op("Pow", [x, g.const(3.0, np.float32)])
    inner = g.op("Add", [x, g.op("Mul", [cube, g.const(0.044715, np.float32)])])
    inner = g.op("Mul", [inner, g.const(math.sqrt(2 / math.pi), np.float32)])
    one_plus = g.op("Add", [g.op("Tanh", [inner]), g.const(1.0, np.float32)])
    half_x = g.op("Mul", [x, g.const(0.5, np.float32)])
    return g.op("Mul", [half_x, one_plus])


def gated_gelu(g, x, weights, prefix):
    """`GatedGeluFeedForward`: `wo(gelu(wi_0 x) * wi_1 x)`."""
    gate = g.op("MatMul", [x, g.weight(f"{prefix}/gate", weights["gate"])])
    hidden = g.op("MatMul", [x, g.weight(f"{prefix}/input", weights["input"])])
    hidden = g.op("Mul", [gelu_tanh(g, gate), hidden])
    return g.op(
        "MatMul", [hidden, g.weight(f"{prefix}/output", weights["output"])]
    )


def project_heads(g, x, kernel, name, heads, head_dim):
    """`[B, S, d] @ [d, heads*head_dim]` laid out as `[B, heads, S, dim]`."""
    projected = g.op("MatMul", [x, g.weight(name, kernel)])
    batch, length = g.dim(x, 0), g.dim(x, 1)
    projected = g.reshape(projected, [batch, length, heads, head_dim])
    return g.op("Transpose", [projected], perm=[0, 2, 1, 3])


def attention(g, query, key, value, dims, bias=None, mask=None):
    """`MultiQueryAttention.attend` on projected heads.

    Args:
        query: `[B, T, H*D]`, the projected queries.
        key, value: `[B, K, S, D]` with `K` K/V heads.
        dims: `(H, K, D)`.
        bias: optional float `[1, H, T, S]`.
        mask: optional bool, broadcastable to `[B, H, T, S]`.

    Returns:
        `[B, T, H*D]`, before the output projection.
    """
    heads, kv_heads, head_dim = dims
    group = heads // kv_heads
    batch, length = g.dim(query, 0), g.dim(query, 1)
    q = g.reshape(query, [batch, length, kv_heads, group, head_dim])
    q = g.op("Transpose", [q], perm=[0, 2, 3, 1, 4])  # [B, K, G, T, D]
    q = g.reshape(q, [batch, kv_heads, -1, head_dim])  # [B, K, G*T, D]
    key_t = g.op("Transpose", [key], perm=[0, 1, 3, 2])
    logits = g.op("MatMul", [q, key_t])  # [B, K, G*T, S]
    source = g.dim(key, 2)
    logits = g.reshape(logits, [batch, heads, length, source])
    if bias is not None:
        logits = g.op("Add", [logits, bias])
    if mask is not None:
        logits = g.op("Where", [mask, logits, g.const(MASK_LOGIT, np.float32)])
    weights = g.op("Softmax", [logits], axis=-1)
    weights = g.reshape(weights, [batch, kv_heads, -1, source])
    out = g.op("MatMul", [weights, value])  # [B, K, G*T, D]
    out = g.reshape(out, [batch, kv_heads, group, length, head_dim])
    out = g.op("Transpose", [out], perm=[0, 3, 1, 2, 4])  # [B, T, K, G, D]
    return g.reshape(out, [batch, length, heads * head_dim])


def relative_bias(g, table, name, query_positions, key_positions, radius):
    """Gathers a precomputed `[2R+1, H]` (or `[R+1, H]`) bias table.

    `table[r + radius]` is the bias of relative position `r = key - query`,
    clipped to `[-radius, radius]`; returns `[1, H, T, S]`.
    """
    relative = g.op(
        "Sub",
        [
            g.op("Unsqueeze", [key_positions, g.const([0])]),
            g.op("Unsqueeze", [query_positions, g.const([1])]),
        ],
    )
    relative = g.op("Max", [relative, g.const(-radius)])
    relative = g.op("Min", [relative, g.const(radius)])
    index = g.op("Add", [relative, g.const(radius)])
    values = g.op("Gather", [g.weight(name, table), index], axis=0)
    values = g.op("Transpose", [values], perm=[2, 0, 1])  # [H, T, S]
    return g.op("Unsqueeze", [values, g.const([0])])


BOOL = TensorProto.BOOL
FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64
