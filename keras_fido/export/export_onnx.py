"""ONNX export of a FiD / FiDO reader for ONNX Runtime serving."""

import json
import os
import shutil
import tempfile
import warnings

import numpy as np

from keras_fido.utils.checks import check_positive_int
from keras_fido.utils.extras import require

GRAPH_FILES = {
    "encoder": "encoder.onnx",
    "cross_key_value": "cross_key_value.onnx",
    "decoder_step": "decoder_step.onnx",
}
# Beside them, for a backbone with passage memory (`encoder_live_layers`).
MEMORY_GRAPH_FILES = {"live_encoder": "live_encoder.onnx"}
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.spm"
# Above this many bytes of weights a graph keeps them in a side file:
# one protobuf message cannot exceed 2 GiB.
_EXTERNAL_DATA_BYTES = 1 << 30


def export_onnx(
    seq_2_seq_lm,
    directory,
    quantize=None,
    max_length=None,
    agreement_examples=None,
    agreement_threshold=0.9,
    overwrite=False,
):
    """Exports a `FiDOSeq2SeqLM` as ONNX graphs and a manifest.

    Works under every Keras backend: the graphs are written node by node
    from the reader's weights (`keras_fido.export.onnx_graphs`), with the
    reader's own math (T5.1.1 RMS norms, bucketed relative position
    biases, gated tanh-GELU, multi-query attention, layer-sparse
    cross-attention). The directory holds:

    - `encoder.onnx`: token ids and mask `[B, P, L]` -> the fused passage
      states `[B, P*L, d_enc]`;
    - `cross_key_value.onnx`: passage states -> the cross-attention keys
      and values of the cross-attending decoder layers only, with the
      decoder's K/V heads, computed once per request;
    - `decoder_step.onnx`: one cached decoding step -> logits, the greedy
      next token and the grown self-attention caches;
    - `live_encoder.onnx`, for a backbone with passage memory
      (`encoder_live_layers`, question block `q`) only: the question
      block's ids `[B, q]`, the mask `[B, P, L]` and the passages' stored
      memory `[B, P, L - q, d_enc]` -> the encoder output, so a server
      that holds a memory store runs only the question's memory layers,
      the live layers and the decoder (`OnnxReader.generate_from_memory`);
      `encoder.onnx` then runs the split encoder from token ids;
    - `tokenizer.spm`, the SentencePiece model (with a preprocessor);
    - `manifest.json`: the config, the limits (`num_passages`,
      `passage_length`, `max_length`), special token ids, FiD prefixes,
      graph files and quantization.

    Batch, passage count and passage length are dynamic axes of the
    graphs. `keras_fido.export.onnx_reader.OnnxReader` serves the
    directory with nothing but numpy, onnxruntime and sentencepiece.

    A reader without a preprocessor exports the token-id graphs only (no
    tokenizer; a `UserWarning` says so); `OnnxReader.generate_token_ids`
    serves them.

    Args:
        seq_2_seq_lm: a `keras_fido.models.FiDOSeq2SeqLM` (float weights).
        directory: str. Where to write; created if needed.
        quantize: `None` or `"int8"`: ONNX Runtime's dynamic quantization
            (`onnxruntime.quantization.quantize_dynamic`, int8 weights of
            every MatMul). The float graphs' next-token choices are then
            compared with the int8 graphs' (teacher-forced on the float
            answers), reported in the manifest's `quantization` entry.
        max_length: int, at least 2. Decoder length, start token included.
            Defaults to the preprocessor's `decoder_sequence_length` (32
            without a preprocessor).
        agreement_examples: examples the int8 agreement is measured on: FiD
            example dicts (with a preprocessor) or a dict of
            `encoder_token_ids` and `encoder_padding_mask` `[B, P, L]`.
            Defaults to 4 requests of random token ids.
        agreement_threshold: float in `[0, 1]`. An int8 export whose
            next-token agreement is below it warns. Defaults to 0.9.
        overwrite: bool. Replace files of an earlier export in
            `directory`. Defaults to False.

    Returns:
        The manifest, a dict (also written to `manifest.json`).

    Examples:
    ```python
    manifest = keras_fido.export.export_onnx(reader, "onnx_reader",
                                             quantize="int8")
    manifest["quantization"]["next_token_agreement"]

    from keras_fido.export.onnx_reader import OnnxReader
    OnnxReader("onnx_reader").generate(example)
    ```
    """
    require("onnx", "onnxruntime")
    from keras_fido.export import onnx_graphs

    backbone = _checked_backbone(seq_2_seq_lm, quantize, agreement_threshold)
    preprocessor = getattr(seq_2_seq_lm, "preprocessor", None)
    manifest = _manifest(backbone, preprocessor, max_length)
    directory = _prepare(directory, overwrite)
    if preprocessor is None:
        warnings.warn(
            "The reader has no preprocessor: exporting the token-id graphs "
            "only, without a tokenizer. Serve them with "
            "`OnnxReader.generate_token_ids`; `generate` needs a tokenizer.",
            UserWarning,
            stacklevel=2,
        )
    else:
        with open(os.path.join(directory, TOKENIZER_FILE), "wb") as f:
            f.write(_proto_bytes(preprocessor.tokenizer))

    weights = onnx_graphs.reader_weights(backbone)
    graphs = {
        name: getattr(onnx_graphs, f"{name}_graph")(weights)
        for name in manifest["graphs"]
    }
    del weights
    if quantize is None:
        for name, model in graphs.items():
            save_graph(model, os.path.join(directory, manifest["graphs"][name]))
        _write_manifest(directory, manifest)
        return manifest
    return _save_int8(
        graphs,
        directory,
        manifest,
        preprocessor is not None,
        agreement_examples,
        agreement_threshold,
    )


def _checked_backbone(seq_2_seq_lm, quantize, agreement_threshold):
    """The reader's backbone, after checking what can be exported."""
    backbone = getattr(seq_2_seq_lm, "backbone", None)
    if backbone is None:
        raise ValueError(
            "`seq_2_seq_lm` must be a `FiDOSeq2SeqLM`. Received: "
            f"{type(seq_2_seq_lm).__name__}"
        )
    if getattr(backbone, "copy_attention", False):
        raise ValueError(
            "The ONNX graphs hold T5's vocabulary output only; a backbone "
            "with `copy_attention=True` exports as a SavedModel "
            "(`export_saved_model`). Received: copy_attention=True"
        )
    if quantize not in (None, "int8"):
        raise ValueError(
            "`quantize` must be None or 'int8'. "
            f"Received: quantize={quantize!r}"
        )
    if not 0.0 <= float(agreement_threshold) <= 1.0:
        raise ValueError(
            "`agreement_threshold` must be a fraction in [0, 1]. Received: "
            f"agreement_threshold={agreement_threshold!r}"
        )
    return backbone


def _save_int8(
    graphs,
    directory,
    manifest,
    with_tokenizer,
    agreement_examples,
    agreement_threshold,
):
    """Writes the graphs int8-quantized, with their agreement with the
    float graphs (written to a temporary directory) in the manifest."""
    files = manifest["graphs"]
    with tempfile.TemporaryDirectory() as float_dir:
        for name, model in graphs.items():
            save_graph(model, os.path.join(float_dir, files[name]))
        graphs.clear()  # The caller's dict too: frees the float graphs.
        _write_manifest(float_dir, manifest)
        if with_tokenizer:
            shutil.copy(os.path.join(directory, TOKENIZER_FILE), float_dir)
        for file in files.values():
            quantize_graph(
                os.path.join(float_dir, file), os.path.join(directory, file)
            )
        manifest["quantization"] = {"mode": "int8"}
        _write_manifest(directory, manifest)
        agreement = int8_agreement(float_dir, directory, agreement_examples)
    manifest["quantization"] = {
        "mode": "int8",
        "method": "onnxruntime.quantization.quantize_dynamic, MatMul "
        "weights int8",
        **agreement,
        "threshold": float(agreement_threshold),
    }
    _write_manifest(directory, manifest)
    if agreement["next_token_agreement"] < agreement_threshold:
        warnings.warn(
            "The int8 graphs agree with the float graphs on "
            f"{agreement['next_token_agreement']:.1%} of next tokens, below "
            f"`agreement_threshold={agreement_threshold}`. Serve the float "
            "export, or check the agreement on the reader's own examples "
            "(`agreement_examples`).",
            UserWarning,
            stacklevel=3,
        )
    return manifest


def _manifest(backbone, preprocessor, max_length):
    config = backbone.get_config()
    config = {k: v for k, v in config.items() if k not in ("name", "dtype")}
    if max_length is None:
        max_length = (
            32 if preprocessor is None else preprocessor.decoder_sequence_length
        )
    max_length = check_positive_int("max_length", max_length)
    if max_length < 2:
        raise ValueError(
            "`max_length` counts the start token, so it must be at least 2 "
            f"to generate anything. Received: max_length={max_length}"
        )
    manifest = {
        "format": "keras_fido.onnx/1",
        "config": config,
        "cross_attention_layer_indices": backbone.cross_attention_layer_indices,
        "graphs": dict(GRAPH_FILES),
        "limits": {"max_length": max_length},
        "tokenizer": None,
        "quantization": None,
    }
    if config.get("encoder_live_layers") is not None:
        manifest["graphs"].update(MEMORY_GRAPH_FILES)
    if preprocessor is None:
        manifest["limits"].update(num_passages=None, passage_length=None)
        manifest["special_token_ids"] = {"start": 0, "end": 1, "pad": 0}
        return manifest
    tokenizer = preprocessor.tokenizer
    for name in ("pad_token_id", "end_token_id", "start_token_id"):
        if getattr(tokenizer, name, None) is None:
            raise ValueError(
                f"The tokenizer must have `{name}` set. Received: "
                f"tokenizer.{name}=None; set a proto on the tokenizer first."
            )
    manifest["limits"].update(
        num_passages=preprocessor.num_passages,
        passage_length=preprocessor.passage_length,
    )
    manifest["special_token_ids"] = {
        "start": int(tokenizer.start_token_id),
        "end": int(tokenizer.end_token_id),
        "pad": int(tokenizer.pad_token_id),
    }
    manifest["prefixes"] = {
        "question": preprocessor.question_prefix,
        "title": preprocessor.title_prefix,
        "context": preprocessor.context_prefix,
    }
    manifest["tokenizer"] = TOKENIZER_FILE
    return manifest


def _proto_bytes(tokenizer):
    proto = getattr(tokenizer, "proto", None)
    if proto is None:
        raise ValueError(
            "Exporting the text graphs needs the tokenizer's SentencePiece "
            "model. Received: a tokenizer with proto=None. Set one, e.g. "
            "`FiDOTokenizer(proto=...)`."
        )
    if isinstance(proto, str):
        with open(proto, "rb") as f:
            return f.read()
    return bytes(proto)


def _prepare(directory, overwrite):
    if not isinstance(directory, (str, os.PathLike)):
        raise ValueError(
            "`directory` must be a directory path. "
            f"Received: directory={directory!r}"
        )
    directory = os.fspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(
            f"`directory` must be a directory. Received: {directory!r}, a file"
        )
    os.makedirs(directory, exist_ok=True)
    ours = set(GRAPH_FILES.values()) | set(MEMORY_GRAPH_FILES.values())
    ours |= {MANIFEST_FILE, TOKENIZER_FILE}
    present = sorted(
        name
        for name in os.listdir(directory)
        if name in ours or name.endswith(".onnx.data")
    )
    if present and not overwrite:
        raise ValueError(
            f"{directory!r} already holds an export ({present}). Pass "
            "`overwrite=True` to replace it, or another directory."
        )
    for name in present:
        os.remove(os.path.join(directory, name))
    return directory


def _write_manifest(directory, manifest):
    with open(os.path.join(directory, MANIFEST_FILE), "w") as f:
        json.dump(manifest, f, indent=2)


def _weight_bytes(model):
    return sum(len(t.raw_data) for t in model.graph.initializer)


def save_graph(model, path):
    """Writes and checks one graph; large weights go to `<file>.data`."""
    import onnx

    external = _weight_bytes(model) > _EXTERNAL_DATA_BYTES
    onnx.save_model(
        model,
        path,
        save_as_external_data=external,
        all_tensors_to_one_file=True,
        location=os.path.basename(path) + ".data",
    )
    onnx.checker.check_model(path)


def quantize_graph(source, target):
    """int8 weights for every MatMul: ONNX Runtime's dynamic quantization
    (activations are quantized at run time, per tensor)."""
    import onnx
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic

    external = os.path.exists(source + ".data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            source,
            target,
            op_types_to_quantize=["MatMul"],
            weight_type=QuantType.QInt8,
            use_external_data_format=external,
        )
    onnx.checker.check_model(target)


def int8_agreement(float_dir, int8_dir, examples=None):
    """Next-token agreement of int8 graphs with the float graphs.

    The float reader answers greedily; the int8 decoder is then fed the
    float answers (teacher forcing) and each of its next-token choices is
    compared with the float one, up to each answer's end token.

    Returns a dict with `next_token_agreement`, `tokens_compared` and
    `examples` (what was compared).
    """
    from keras_fido.export.onnx_reader import OnnxReader

    reference = OnnxReader(float_dir)
    quantized = OnnxReader(int8_dir)
    described = "given examples"
    if examples is None:
        examples = _random_token_inputs(reference.manifest)
        described = "random token ids, 4 requests"
    if isinstance(examples, dict) and "encoder_token_ids" in examples:
        ids = np.asarray(examples["encoder_token_ids"], np.int64)
        mask = np.asarray(examples["encoder_padding_mask"], np.int64)
    else:
        ids, mask = reference.pack(examples)
    tokens = reference.generate_token_ids(ids, mask)
    forced = quantized.teacher_forced_next_tokens(ids, mask, tokens)
    end = reference.manifest["special_token_ids"]["end"]
    expected = tokens[:, 1:]
    # Positions up to and including each row's first end token.
    ended = np.cumsum(expected == end, axis=1) - (expected == end)
    valid = ended == 0
    agree = (forced == expected) & valid
    return {
        "next_token_agreement": float(agree.sum() / max(valid.sum(), 1)),
        "tokens_compared": int(valid.sum()),
        "examples": described,
    }


def _random_token_inputs(manifest):
    limits = manifest["limits"]
    passages = limits["num_passages"] or 4
    length = limits["passage_length"] or 32
    rng = np.random.default_rng(0)
    vocabulary = manifest["config"]["vocabulary_size"]
    ids = rng.integers(3, vocabulary, (4, passages, length), dtype=np.int64)
    return {"encoder_token_ids": ids, "encoder_padding_mask": np.ones_like(ids)}
