"""Cached decoding on the torch backend, one compiled graph per step.

keras-hub runs the torch decoding loop eagerly: every step walks the
decoder through each Keras layer's `__call__` (about 140 calls on
`fid_small`) and a few hundred small eager ops. On `fid_small` (B=2,
P=4, L=64) about half of an eager step's wall time is that Python;
compiled, a step is the matmuls plus one fused graph.

With `reader.compile(jit_compile=True)` on torch (keras' own switch for
`torch.compile`), `FiDOSeq2SeqLM` instead captures one step,
`call_decoder_with_cache`, with `torch.export` and compiles the captured
graph with `torch.compile` (inductor). The sampler loop stays keras-hub's,
so greedy, beam and the other samplers all work, with or without a copy
head. Non-strict export runs the step's Python once on fake tensors (3 s
on `fid_small`), where `torch.compile` on the reader itself interprets
Keras' `__call__` bytecode (33 s). The first step of each new shape
compiles: on `fid_small`, about 100 s on a busy 2-core CPU, 14 s when
inductor's on-disk cache (`TORCHINDUCTOR_CACHE_DIR`) holds its kernels.

The token, the caches and the step index are graph inputs, so one graph
serves every step of a request. Where oneDNN is available, each weight
matmul of the captured step runs as oneDNN's linear over a copy of the
weight packed once (`torch_packed_linears`: about twice the rate at
which MKL's matmul streams weights for a few rows); other weights are
referenced, not copied. One graph is kept per set of input shapes (beam
search has its own); the weights are checked once per batch, and the
graphs and packed copies are rebuilt when a weight was replaced
(`quantize`, LoRA) or written in place (training). Anything that fails
to export or compile decodes eagerly, after one warning.
"""

import collections
import time
import warnings

import keras
import torch
from keras import ops

from keras_fido.models.fido_decoding import generate_batch
from keras_fido.models.torch_packed_linears import PackedWeights
from keras_fido.models.torch_packed_linears import onednn_available
from keras_fido.models.torch_packed_linears import pack_constant_matmuls

# Graphs kept per reader, one per set of input shapes (batch sizes, beams).
MAX_GRAPHS = 8


def torch_generate_function(reader, backend="inductor"):
    """keras-hub's `generate_function` for `reader`, with every decoding
    step run by a compiled graph (`backend` is `torch.compile`'s)."""
    step = CompiledDecodingStep(reader, backend)

    def generate_function(inputs, stop_token_ids=None):
        step.check_weights()
        # Graph inputs must be tensors (keras-hub passes NumPy through).
        inputs = {
            name: value if value is None else ops.convert_to_tensor(value)
            for name, value in inputs.items()
        }
        with torch.no_grad():
            return generate_batch(reader, inputs, stop_token_ids, step)

    generate_function.decoding_step = step
    return generate_function


class CompiledDecodingStep:
    """`reader.call_decoder_with_cache`, exported and compiled per shape.

    Attributes:
        compile_seconds: wall time of each graph's export and first run
            (its compile), in order.
        failed: whether decoding fell back to eager for good.
        packed_matmuls: for each graph, how many weight matmuls run as
            oneDNN linears over packed weights (`torch_packed_linears`).
    """

    def __init__(self, reader, backend="inductor"):
        self.reader = reader
        self.backend = backend
        self.graphs = collections.OrderedDict()
        self.compile_seconds = []
        self.failed = False
        self.packed_weights = PackedWeights()
        self.packed_matmuls = []
        self._weights = None

    def check_weights(self):
        """Drops the graphs (and packed weights) when a weight tensor was
        replaced or written in place (training)."""
        weights = tuple(
            (id(v.value), v.value._version) for v in self.reader.weights
        )
        if weights != self._weights:
            self.graphs.clear()
            self.packed_weights.clear()
            self._weights = weights

    def __call__(self, *args):
        if self.failed:
            return self.reader.call_decoder_with_cache(*args)
        try:
            return self._run(args)
        except Exception as error:  # Any failure: decode eagerly instead.
            self.failed = True
            self.graphs.clear()
            lines = [line for line in str(error).splitlines() if line]
            message = " ".join(lines[:2])[:200]  # torch's cause is line 2.
            warnings.warn(
                "Compiling the torch decoding step failed; decoding "
                f"eagerly. ({type(error).__name__}: {message})",
                stacklevel=2,
            )
            return self.reader.call_decoder_with_cache(*args)

    def _run(self, args):
        key = (
            self.reader.tokenizer_vocabulary_size(),
            tuple(
                (tuple(x.shape), x.dtype)
                for x in keras.tree.flatten(args)
                if x is not None
            ),
        )
        graph = self.graphs.get(key)
        if graph is not None:
            self.graphs.move_to_end(key)
            return graph(*args)
        start = time.perf_counter()
        exported = torch.export.export(
            _DecodingStep(self.reader), args, strict=False
        )
        module = exported.module()
        if onednn_available():
            token_ids = args[0]
            rows = token_ids.shape[0] * token_ids.shape[1]
            packed = pack_constant_matmuls(module, rows, self.packed_weights)
            self.packed_matmuls.append(packed)
        graph = torch.compile(
            module,
            backend=self.backend,
            dynamic=False,
            fullgraph=True,
        )
        outputs = graph(*args)  # torch.compile compiles here.
        self.compile_seconds.append(time.perf_counter() - start)
        self.graphs[key] = graph
        if len(self.graphs) > MAX_GRAPHS:
            self.graphs.popitem(last=False)
        return outputs


class _DecodingStep(torch.nn.Module):
    """The step as the `torch.nn.Module` that `torch.export` takes. The
    reader is held outside the module tree, so its weights are captured
    by reference as constants."""

    def __init__(self, reader):
        super().__init__()
        object.__setattr__(self, "reader", reader)

    def forward(self, *args):
        return self.reader.call_decoder_with_cache(*args)
