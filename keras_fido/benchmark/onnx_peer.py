"""Vanilla FiD as a user serves HF T5 in ONNX Runtime: `--peer onnxruntime`.

The strongest FiD-Base peer on a CPU, and an independent one: nothing of
keras_fido's model or exporter is involved. transformers'
`T5ForConditionalGeneration` (random weights, seed 0, the size of the
vanilla FiD config, as `peer.run_transformers_fid` builds it) is traced by
`torch.onnx.export` (the TorchScript exporter: the dynamo one needs
onnxscript) into the three graphs an Optimum-style seq2seq deployment runs,
each with dynamic batch and length axes:

- `encoder.onnx`: passages encoded apart, ids and mask `[B*P, L]` in,
  states `[B*P, L, d]` out;
- `cross_key_value.onnx`: the states laid end to end, `[B, P*L, d]`, and
  every decoder layer's cross-attention K/V projected from them, once per
  request;
- `decoder_step.onnx`: one token through transformers' own forward, the
  self-attention past K/V in and present out, the cross K/V read from the
  cache as `generate` reads them from its second step on.

ONNX Runtime runs them with the settings of keras_fido's `OnnxReader`: one
thread pool shared by the graphs (`threads` or the machine's cores),
`ORT_ENABLE_ALL`, and IO binding that keeps the states and caches in
`OrtValue`s between graphs and steps. Decoding is greedy for every step (no
early stop). `quantize="int8"` also times the graphs after
`onnxruntime.quantization.quantize_dynamic`, with the settings of
`export_onnx(..., quantize="int8")`.
"""

import os
import tempfile
import warnings

import numpy as np
import onnxruntime as ort
import torch

from keras_fido.benchmark.peer import _cache_argument
from keras_fido.benchmark.peer import t5_config
from keras_fido.benchmark.timing import time_calls
from keras_fido.export.onnx_reader import _GLOBAL_POOL
from keras_fido.export.onnx_reader import _thread_pool

GRAPHS = ("encoder", "cross_key_value", "decoder_step")
TIMES = (
    "encoder_ms_per_sample",
    "decoder_ms_per_sample",
    "total_ms_per_sample",
    "compile_s",
)
# Dynamic axes shared by the graphs.
PASSAGES = {0: "batch_passages", 1: "length"}
FUSED = {0: "batch", 1: "fused_length"}
FUSED_KEY_VALUE = {0: "batch", 2: "fused_length"}


class _Encoder(torch.nn.Module):
    """Passages `[B*P, L]` through transformers' T5 encoder."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model.encoder(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state


class _CrossKeyValue(torch.nn.Module):
    """Every decoder layer's cross-attention K/V `[B, H, P*L, d_kv]`, from
    the passages' states fused per sample (the mask gives `B`)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, encoder_output, encoder_attention_mask):
        batch = encoder_attention_mask.shape[0]
        states = encoder_output.reshape(batch, -1, encoder_output.shape[-1])
        outputs = []
        for block in self.model.decoder.block:
            attention = block.layer[1].EncDecAttention
            heads = (batch, -1, attention.n_heads, attention.key_value_proj_dim)
            for projection in (attention.k, attention.v):
                outputs.append(projection(states).view(heads).transpose(1, 2))
        return tuple(outputs)


class _DecoderStep(torch.nn.Module):
    """One greedy step of transformers' forward with a filled cache."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.layers = len(model.decoder.block)

    def forward(self, decoder_input_ids, encoder_attention_mask, *key_values):
        from transformers.cache_utils import DynamicCache
        from transformers.cache_utils import EncoderDecoderCache

        past, cross = DynamicCache(), DynamicCache()
        for layer in range(self.layers):
            past.update(*key_values[2 * layer : 2 * layer + 2], layer)
            cross_index = 2 * (self.layers + layer)
            cross.update(*key_values[cross_index : cross_index + 2], layer)
        cache = EncoderDecoderCache(past, cross)
        for layer in range(self.layers):
            cache.is_updated[layer] = True  # cross K/V are final
        # The cross K/V come from the cache, so transformers reads only the
        # shape of the encoder states: a [B, P*L, 1] stand-in.
        stand_in = encoder_attention_mask[:, :, None].float()
        logits = self.model(
            encoder_outputs=(stand_in,),
            attention_mask=encoder_attention_mask,
            decoder_input_ids=decoder_input_ids,
            use_cache=True,
            **{_cache_argument(): cache},
        ).logits
        presents = [
            t for layer in past.layers for t in (layer.keys, layer.values)
        ]
        return (logits[:, -1].argmax(-1), *presents)


def _key_value_names(prefix, layers):
    return [
        f"{prefix}_{kind}_{i}"
        for i in range(layers)
        for kind in ("key", "value")
    ]


def export_t5_graphs(model, directory):
    """Traces `model` (a `T5ForConditionalGeneration`) into the encoder,
    cross K/V and decoder-step graphs in `directory`; returns their paths.

    The example inputs have distinct sizes (batch 2, 3 passages of 5
    tokens, 4 past tokens); every batch and length axis is dynamic.
    """
    paths = {}
    for name, graph in zip(GRAPHS, (_encoder, _cross_key_value, _step)):
        paths[name] = os.path.join(directory, f"{name}.onnx")
        _export(*graph(model), paths[name])
    return paths


# Each graph below is (module, example inputs, dynamic axes of every input
# then every output, in order).


def _encoder(model):
    ids = torch.full((6, 5), 3, dtype=torch.long)
    names = ("input_ids", "attention_mask", "encoder_output")
    return (
        _Encoder(model),
        (ids, torch.ones_like(ids)),
        dict.fromkeys(names, PASSAGES),
    )


def _cross_key_value(model):
    states = torch.zeros((6, 5, model.config.d_model))
    axes = {"encoder_output": PASSAGES, "encoder_attention_mask": FUSED}
    for name in _key_value_names("cross", model.config.num_decoder_layers):
        axes[name] = FUSED_KEY_VALUE
    return (
        _CrossKeyValue(model),
        (states, torch.ones((2, 15), dtype=torch.long)),
        axes,
    )


def _step(model):
    config = model.config
    layers = config.num_decoder_layers
    example = [
        torch.zeros((2, 1), dtype=torch.long),
        torch.ones((2, 15), dtype=torch.long),
    ]
    example += [
        torch.zeros((2, config.num_heads, 4, config.d_kv))
        for _ in range(2 * layers)
    ]
    example += [
        torch.zeros((2, config.num_heads, 15, config.d_kv))
        for _ in range(2 * layers)
    ]
    axes = {"decoder_input_ids": {0: "batch"}, "encoder_attention_mask": FUSED}
    axes.update(
        dict.fromkeys(
            _key_value_names("past", layers), {0: "batch", 2: "past_length"}
        )
    )
    axes.update(
        dict.fromkeys(_key_value_names("cross", layers), FUSED_KEY_VALUE)
    )
    axes["next_token"] = {0: "batch"}
    axes.update(
        dict.fromkeys(
            _key_value_names("present", layers),
            {0: "batch", 2: "present_length"},
        )
    )
    return _DecoderStep(model), tuple(example), axes


def _export(module, example, axes, path):
    """`torch.onnx.export` of one graph; names in `axes`' order."""
    names = list(axes)
    inputs, outputs = names[: len(example)], names[len(example) :]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings
        torch.onnx.export(
            module.eval(),
            example,
            path,
            dynamo=False,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
        )


class OnnxT5Peer:
    """The three graphs of `export_t5_graphs` in ONNX Runtime sessions.

    Args:
        directory: str. Where `export_t5_graphs` wrote the graphs.
        threads: int. Threads of the pool the graphs share; defaults to
            the machine's cores. As for `OnnxReader`, the first pool made
            in a process stays: `threads` reports its true size.
    """

    def __init__(self, directory, threads=None):
        options = _thread_pool(threads)
        self.threads = _GLOBAL_POOL["threads"]
        if threads and threads != self.threads:
            warnings.warn(
                f"ONNX Runtime's shared thread pool already has "
                f"{self.threads} threads; the peer runs with them instead "
                f"of threads={threads}."
            )
        self.sessions = {
            name: ort.InferenceSession(
                os.path.join(directory, f"{name}.onnx"),
                options,
                providers=["CPUExecutionProvider"],
            )
            for name in GRAPHS
        }
        step = self.sessions["decoder_step"]
        self._cross = [
            o.name for o in self.sessions["cross_key_value"].get_outputs()
        ]
        self._past = [
            i.name for i in step.get_inputs() if i.name.startswith("past_")
        ]
        self._outputs = [o.name for o in step.get_outputs()]
        past_shape = step.get_inputs()[2].shape  # [batch, heads, t, d_kv]
        self._heads, self._key_value_dim = past_shape[1], past_shape[3]

    def encode(self, input_ids, attention_mask):
        """Passage states `[B*P, L, d]` (an `OrtValue`) of int64 `[B*P, L]`
        ids and mask."""
        binding = self.sessions["encoder"].io_binding()
        binding.bind_cpu_input("input_ids", input_ids)
        binding.bind_cpu_input("attention_mask", attention_mask)
        binding.bind_output("encoder_output", "cpu")
        self.sessions["encoder"].run_with_iobinding(binding)
        return binding.get_outputs()[0]

    def start(self, encoder_output, fused_mask):
        """Cross K/V once; the step binding that holds them and an empty
        self-attention cache. `fused_mask` is int64 `[B, P*L]`."""
        cross = self.sessions["cross_key_value"]
        binding = cross.io_binding()
        binding.bind_ortvalue_input("encoder_output", encoder_output)
        binding.bind_cpu_input("encoder_attention_mask", fused_mask)
        for name in self._cross:
            binding.bind_output(name, "cpu")
        cross.run_with_iobinding(binding)
        step = self.sessions["decoder_step"].io_binding()
        for name, value in zip(self._cross, binding.get_outputs()):
            step.bind_ortvalue_input(name, value)
        step.bind_cpu_input("encoder_attention_mask", fused_mask)
        empty = np.zeros(
            (fused_mask.shape[0], self._heads, 0, self._key_value_dim),
            np.float32,
        )
        past = {n: ort.OrtValue.ortvalue_from_numpy(empty) for n in self._past}
        return {"binding": step, "past": past, "alive": [fused_mask]}

    def step(self, state, token):
        """Feeds int64 `token` `[B, 1]`; returns the next tokens `[B]`."""
        binding = state["binding"]
        token = np.ascontiguousarray(token, np.int64)
        state["alive"][1:] = [token]  # bound by pointer: keep it alive
        binding.bind_cpu_input("decoder_input_ids", token)
        for name, value in state["past"].items():
            binding.bind_ortvalue_input(name, value)
        binding.clear_binding_outputs()
        for name in self._outputs:
            binding.bind_output(name, "cpu")
        self.sessions["decoder_step"].run_with_iobinding(binding)
        outputs = dict(zip(self._outputs, binding.get_outputs()))
        state["past"] = {
            name: outputs["present" + name[len("past") :]]
            for name in self._past
        }
        return outputs["next_token"].numpy()

    def greedy(self, encoder_output, fused_mask, steps, forced=None):
        """Token ids `[B, 1 + steps]` from the start token 0, every step
        run. With `forced` (`[B, 1 + steps]`), feeds those tokens instead
        of its own choices (teacher forcing) and returns its choices."""
        state = self.start(encoder_output, fused_mask)
        token = np.zeros((fused_mask.shape[0], 1), np.int64)
        tokens = [token[:, 0]]
        for i in range(steps):
            if forced is not None:
                token = forced[:, i : i + 1]
            token = self.step(state, token)[:, None]
            tokens.append(token[:, 0])
        return np.stack(tokens, axis=1)

    def generate(self, encoder_token_ids, encoder_padding_mask, steps):
        """FiD greedy decoding of `[B, P, L]` passages, `steps` tokens."""
        ids = np.asarray(encoder_token_ids, np.int64)
        mask = np.asarray(encoder_padding_mask, np.int64)
        batch, passages, length = ids.shape
        states = self.encode(
            ids.reshape(batch * passages, length),
            mask.reshape(batch * passages, length),
        )
        return self.greedy(states, mask.reshape(batch, -1), steps)


def run_onnxruntime_fid(
    config,
    batch_size,
    passages,
    passage_length,
    output_length,
    repeats=3,
    decoder_only=False,
    threads=None,
    quantize=None,
):
    """Times HF T5 exported to ONNX, run FiD-style by ONNX Runtime.

    Args:
        config: dict. A vanilla FiD `FiDOBackbone` config.
        batch_size, passages, passage_length, output_length: ints, as for
            `runner.run_variant`.
        repeats: int. Timed runs after the warm-up.
        decoder_only: bool. Feed random encoder states; no encoder timing.
        threads: int. Threads of ONNX Runtime's pool; defaults to the
            machine's cores.
        quantize: `None` or `"int8"`: also time the int8 graphs.

    Returns:
        The keys of `peer.run_transformers_fid`, and with `quantize` a
        `quantized` dict: the int8 graphs' times, weight bytes and their
        int8 share, and their tokens' agreement with the float graphs'.
    """
    if quantize not in (None, "int8"):
        raise ValueError(
            "`quantize` must be None or 'int8'. "
            f"Received: quantize={quantize!r}"
        )
    import transformers

    torch.manual_seed(0)
    model = transformers.T5ForConditionalGeneration(t5_config(config)).eval()
    rng = np.random.default_rng(0)
    shape = (batch_size, passages, passage_length)
    ids = rng.integers(3, config["vocabulary_size"], shape)
    states = None
    if decoder_only:
        states = rng.standard_normal(
            (batch_size * passages, passage_length, model.config.d_model),
            np.float32,
        )
    with tempfile.TemporaryDirectory() as directory:
        export_t5_graphs(model, directory)
        del model
        peer = OnnxT5Peer(directory, threads=threads)
        encoder, decoder, tokens = time_peer(
            peer, ids, output_length, repeats, states
        )
        record = _record(peer.threads, batch_size, encoder, decoder)
        del peer
        if quantize:
            record["quantized"] = _quantized(
                directory, ids, output_length, repeats, states, tokens, threads
            )
    return record


def time_peer(peer, ids, output_length, repeats, states=None):
    """(encoder timing or None, decoder timing, tokens) of `peer` on ids
    `[B, P, L]` (no padding); given `states` `[B*P, L, d]`, the encoder
    is not run."""
    flat_ids, flat_mask, fused_mask = _fid_inputs(ids)
    encoder_timing = None
    if states is None:
        encoder_timing = time_calls(
            lambda: peer.encode(flat_ids, flat_mask), repeats=repeats
        )
    states = _states(peer, ids, states)
    out = {}

    def decode():
        out["tokens"] = peer.greedy(states, fused_mask, output_length)

    decoder_timing = time_calls(decode, repeats=repeats)
    tokens = out["tokens"]
    expected = (ids.shape[0], output_length + 1)
    if tokens.shape != expected:
        raise RuntimeError(
            f"The ONNX Runtime peer generated tokens of shape {tokens.shape} "
            f"instead of {expected}."
        )
    return encoder_timing, decoder_timing, tokens


def _fid_inputs(ids):
    """int64 ids and mask `[B*P, L]` of passages `[B, P, L]`, and the mask
    of their fused states `[B, P*L]`."""
    batch, passages, length = ids.shape
    flat_ids = ids.reshape(batch * passages, length).astype(np.int64)
    fused_mask = np.ones((batch, passages * length), np.int64)
    return flat_ids, np.ones_like(flat_ids), fused_mask


def _states(peer, ids, states=None):
    """The encoder states as an `OrtValue`: `states` if given, else
    `peer`'s encoding of `ids`."""
    if states is not None:
        return ort.OrtValue.ortvalue_from_numpy(states)
    flat_ids, flat_mask, _ = _fid_inputs(ids)
    return peer.encode(flat_ids, flat_mask)


def _record(threads, batch_size, encoder_timing, decoder_timing):
    """`peer._record`'s keys for ONNX Runtime's figures."""
    import transformers

    def per_sample(timing):
        return timing and 1e3 * timing["median_s"] / batch_size

    encoder_ms = per_sample(encoder_timing)
    decoder_ms = per_sample(decoder_timing)
    return {
        "library": "onnxruntime",
        "onnxruntime": ort.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "threads": threads,
        "encoder_ms_per_sample": encoder_ms,
        "decoder_ms_per_sample": decoder_ms,
        "total_ms_per_sample": (
            None if encoder_ms is None else encoder_ms + decoder_ms
        ),
        "compile_s": {
            "encoder": encoder_timing and encoder_timing["compile_s"],
            "decoder": decoder_timing["compile_s"],
        },
    }


def _quantized(
    float_dir, ids, output_length, repeats, states, float_tokens, threads
):
    """The int8 graphs' figures, quantized as `export_onnx` quantizes."""
    from keras_fido.benchmark.onnx_engine import graph_weight_sizes
    from keras_fido.export.export_onnx import quantize_graph

    with tempfile.TemporaryDirectory() as directory:
        for name in GRAPHS:
            quantize_graph(
                os.path.join(float_dir, f"{name}.onnx"),
                os.path.join(directory, f"{name}.onnx"),
            )
        peer = OnnxT5Peer(directory, threads=threads)
        encoder, decoder, tokens = time_peer(
            peer, ids, output_length, repeats, states
        )
        weights = graph_weight_sizes(directory)
        forced = peer.greedy(
            _states(peer, ids, states),
            _fid_inputs(ids)[2],
            output_length,
            forced=float_tokens,
        )
    record = _record(peer.threads, ids.shape[0], encoder, decoder)
    return {
        "mode": "int8",
        **{key: record[key] for key in TIMES},
        "weight_bytes": weights["bytes"],
        "int8_weight_fraction": weights["int8_fraction"],
        "generated_token_agreement": float(
            np.mean(tokens[:, 1:] == float_tokens[:, 1:])
        ),
        "next_token_agreement": float(
            np.mean(forced[:, 1:] == float_tokens[:, 1:])
        ),
    }
