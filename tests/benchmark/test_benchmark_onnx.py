"""`--engine onnxruntime` times the exported reader with the keras
engine's record layout."""

import json

import numpy as np
import pytest

from keras_fido.benchmark.__main__ import main

pytest.importorskip("onnxruntime")

TINY = [
    "--size",
    "tiny",
    "--passages",
    "2",
    "--passage-length",
    "8",
    "--repeats",
    "1",
    "--batch-size",
    "2",
    "--output-length",
    "3",
]


def test_onnxruntime_engine_records_float_and_int8_figures(tmp_path):
    path = tmp_path / "r.json"
    main(
        TINY
        + [
            "--engine",
            "onnxruntime",
            "--quantize",
            "int8",
            "--variants",
            "fid,lsa_mq",
            "--json",
            str(path),
            "--out-dir",
            str(tmp_path),
        ]
    )
    result = json.loads(path.read_text())
    assert result["engine"] == "onnxruntime"
    fid, fido = result["records"]
    for record in (fid, fido):
        assert record["engine"] == "onnxruntime"
        assert record["encoder_ms_per_sample"] > 0
        assert record["decoder_ms_per_sample"] > 0
        assert record["total_ms_per_sample"] == (
            record["encoder_ms_per_sample"] + record["decoder_ms_per_sample"]
        )
        quantized = record["quantized"]
        assert quantized["mode"] == "int8"
        assert quantized["decoder_ms_per_sample"] > 0
        assert 0 < quantized["int8_weight_fraction"] < 1
        assert 0 <= quantized["next_token_agreement"] <= 1
    assert (
        fid["cross_attention_cache_bytes_per_sample"]
        > fido["cross_attention_cache_bytes_per_sample"]
    )
    assert "| fid | int8 |" in (tmp_path / "table.md").read_text()


@pytest.fixture(scope="module")
def peer_export(tmp_path_factory):
    """A tiny transformers T5 and its three peer graphs."""
    pytest.importorskip("transformers")
    from keras_fido.benchmark.onnx_peer import export_t5_graphs
    from keras_fido.testing import t5_reference

    # Random norms and biases, a deeper decoder than encoder and an own
    # output head: greedy tokens vary, so a wrong graph shows.
    model = t5_reference.untie_output_projection(t5_reference.tiny_t5())
    directory = tmp_path_factory.mktemp("peer")
    export_t5_graphs(model, directory)
    return model, directory


def test_onnxruntime_peer_decodes_like_transformers_generate(peer_export):
    from keras_fido.benchmark.onnx_peer import OnnxT5Peer
    from keras_fido.testing import t5_reference

    model, directory = peer_export
    # Padded passages and an empty one; shapes unlike the export's.
    inputs = t5_reference.random_fid_inputs(batch=3, passages=2, length=9)
    ids, mask = inputs["encoder_token_ids"], inputs["encoder_padding_mask"]
    expected = t5_reference.fid_greedy_generate(model, ids, mask, 6)
    tokens = OnnxT5Peer(directory).generate(ids, mask, steps=6)
    assert len(set(tokens[:, 1:].ravel())) > 3
    np.testing.assert_array_equal(tokens, expected)


def test_onnxruntime_peer_int8_graphs_decode(peer_export, tmp_path):
    from keras_fido.benchmark.onnx_engine import graph_weight_sizes
    from keras_fido.benchmark.onnx_peer import GRAPHS
    from keras_fido.benchmark.onnx_peer import OnnxT5Peer
    from keras_fido.export.export_onnx import quantize_graph

    _, float_dir = peer_export
    for name in GRAPHS:
        quantize_graph(
            str(float_dir / f"{name}.onnx"), str(tmp_path / f"{name}.onnx")
        )
    ids = np.random.default_rng(0).integers(3, 128, (2, 2, 5))
    tokens = OnnxT5Peer(tmp_path).generate(ids, np.ones_like(ids), steps=4)
    assert tokens.shape == (2, 5)
    assert graph_weight_sizes(tmp_path)["int8_fraction"] > 0.5


def test_onnxruntime_peer_records_float_and_int8_figures(tmp_path):
    pytest.importorskip("transformers")
    path = tmp_path / "p.json"
    main(
        TINY
        + [
            "--engine",
            "onnxruntime",
            "--quantize",
            "int8",
            "--peer",
            "onnxruntime",
            "--variants",
            "fid",
            "--json",
            str(path),
            "--out-dir",
            str(tmp_path),
        ]
    )
    peer = json.loads(path.read_text())["peer"]
    assert peer["library"] == "onnxruntime"
    assert peer["encoder_ms_per_sample"] > 0
    assert peer["decoder_ms_per_sample"] > 0
    assert set(peer["ratios"]) == {"encoder", "decoder", "total"}
    assert all(v > 0 for v in peer["ratios"].values())
    quantized = peer["quantized"]
    assert quantized["mode"] == "int8"
    assert quantized["decoder_ms_per_sample"] > 0
    assert 0 < quantized["int8_weight_fraction"] < 1
    assert 0 <= quantized["next_token_agreement"] <= 1
    assert all(v > 0 for v in quantized["ratios"].values())
