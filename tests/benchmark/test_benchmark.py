"""The benchmark tool runs the real generate path and reports coherently."""

import json

from keras_fido import analysis
from keras_fido.benchmark.__main__ import main
from keras_fido.benchmark.report import ratio_lines
from keras_fido.benchmark.variants import variant_config


def test_tiny_ladder_writes_json_table_and_plot(tmp_path):
    out = tmp_path / "out"
    records_path = tmp_path / "records.json"
    main(
        [
            "--size",
            "tiny",
            "--batch-size",
            "2",
            "--passages",
            "2",
            "--passage-length",
            "8",
            "--output-length",
            "3",
            "--repeats",
            "1",
            "--variants",
            "fid,lsa_mq",
            "--json",
            str(records_path),
            "--out-dir",
            str(out),
        ]
    )
    records = json.loads(records_path.read_text())["records"]
    assert [r["variant"] for r in records] == ["fid", "lsa_mq"]
    for r in records:
        assert r["decoder_ms_per_sample"] > 0
        assert r["encoder_ms_per_sample"] > 0
        assert r["total_ms_per_sample"] == (
            r["encoder_ms_per_sample"] + r["decoder_ms_per_sample"]
        )
        # The cache `generate` allocates is the analytic one.
        assert r["cross_attention_cache_bytes_per_sample"] == (
            analysis.cross_attention_cache_bytes_per_sample(
                variant_config("tiny", r["variant"]), 2, 8
            )
        )
    fid, fido = records
    # K=3 over 6 layers keeps 2 of 6 cross layers; 1 of 4 K/V heads.
    ratio = 6 / 2 * 4
    assert (
        fid["cross_attention_cache_bytes_per_sample"]
        == ratio * (fido["cross_attention_cache_bytes_per_sample"])
    )
    assert f"cache {ratio:.1f}x smaller" in ratio_lines(records)[0]
    assert (out / "time_per_sample.png").stat().st_size > 1000
    assert "| fid |" in (out / "table.md").read_text()
