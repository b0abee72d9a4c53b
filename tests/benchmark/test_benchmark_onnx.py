"""`--engine onnxruntime` times the exported reader with the keras
engine's record layout."""

import json

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


def test_onnxruntime_peer_times_converted_transformers_t5(tmp_path):
    pytest.importorskip("transformers")
    path = tmp_path / "p.json"
    main(
        TINY
        + [
            "--engine",
            "onnxruntime",
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
