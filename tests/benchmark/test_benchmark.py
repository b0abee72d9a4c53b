"""The benchmark tool runs the real generate path and reports coherently."""

import importlib.util
import json

import pytest

from keras_fido import analysis
from keras_fido.benchmark import memory
from keras_fido.benchmark import peer
from keras_fido.benchmark import report
from keras_fido.benchmark import roofline
from keras_fido.benchmark import runner
from keras_fido.benchmark.__main__ import _parse_sweeps
from keras_fido.benchmark.__main__ import main
from keras_fido.benchmark.report import ratio_lines
from keras_fido.benchmark.variants import variant_config

TINY = [
    "--size",
    "tiny",
    "--passages",
    "2",
    "--passage-length",
    "8",
    "--repeats",
    "1",
]
RECORD_KEYS = {
    "variant",
    "encoder_ms_per_sample",
    "decoder_ms_per_sample",
    "total_ms_per_sample",
    "cross_attention_cache_bytes_per_sample",
    "config",
    "machine",
    "setting",
}
HAS_TRANSFORMERS = all(
    importlib.util.find_spec(name) for name in ("torch", "transformers")
)


def test_tiny_ladder_writes_json_table_plot_roofline_and_docs(tmp_path):
    out = tmp_path / "out"
    records_path = tmp_path / "records.json"
    docs = tmp_path / "docs" / "performance.md"
    main(
        TINY
        + [
            "--batch-size",
            "2",
            "--output-length",
            "3",
            "--variants",
            "fid,lsa_mq",
            "--roofline",
            "--roofline-matmul-size",
            "64",
            "--roofline-copy-mib",
            "1",
            "--json",
            str(records_path),
            "--out-dir",
            str(out),
            "--docs",
            str(docs),
        ]
    )
    result = json.loads(records_path.read_text())
    records = result["records"]
    assert [r["variant"] for r in records] == ["fid", "lsa_mq"]
    for r in records:
        assert RECORD_KEYS <= set(r)
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
        bounds = r["roofline"]
        assert bounds["encoder_bound_ms_per_sample"] > 0
        assert bounds["decoder_step_bound_by"] in ("memory", "compute")
        assert bounds["decoder_step_measured_over_bound"] == pytest.approx(
            r["decoder_ms_per_step"]
            / bounds["decoder_step_bound_ms_per_sample"]
        )
    machine = result["roofline"]
    assert machine["peak_flops_per_s"] > 0
    # The decoder's bound uses the read bandwidth; copy and the matmul
    # rate at the run's batch size are recorded beside it.
    assert machine["bandwidth_bytes_per_s"] == machine["read"]["bytes_per_s"]
    assert machine["copy"]["bytes_per_s"] > 0
    assert machine["matvec"]["batch_size"] == 2
    assert machine["matvec_bytes_per_s"] == machine["matvec"]["bytes_per_s"]
    for r in records:
        bounds = r["roofline"]
        assert bounds["decoder_step_measured_over_matvec_bound"] == (
            pytest.approx(
                r["decoder_ms_per_step"]
                / bounds["decoder_step_matvec_bound_ms_per_sample"]
            )
        )
    assert result["machine"]["cpu_count"] >= 1
    fid, fido = records
    # K=3 over 6 layers keeps 2 of 6 cross layers; 1 of 4 K/V heads.
    ratio = 6 / 2 * 4
    assert (
        fid["cross_attention_cache_bytes_per_sample"]
        == ratio * (fido["cross_attention_cache_bytes_per_sample"])
    )
    assert f"cache {ratio:.1f}x smaller" in ratio_lines(records)[0]
    assert (out / "time_per_sample.png").stat().st_size > 1000
    table = (out / "table.md").read_text()
    assert "| fid |" in table and "Against the roofline" in table
    text = docs.read_text()
    assert "## Machine" in text and "| lsa_mq |" in text
    assert "](../out/time_per_sample.png)" in text


def test_int8_and_beam_modes_time_and_compare_tokens(tmp_path):
    path = tmp_path / "r.json"
    main(
        TINY
        + [
            "--batch-size",
            "4",
            "--output-length",
            "6",
            "--variants",
            "lsa_mq",
            "--decoder-only",
            "--quantize",
            "int8",
            "--beam",
            "2",
            "--json",
            str(path),
            "--out-dir",
            str(tmp_path),
        ]
    )
    (record,) = json.loads(path.read_text())["records"]
    quantized = record["quantized"]
    assert quantized["mode"] == "int8"
    assert quantized["decoder_ms_per_sample"] > 0
    # The projections are int8; the shared token embedding stays float.
    assert quantized["weight_bytes"] < 4 * record["parameters"]
    assert 0.0 < quantized["int8_weight_fraction"] < 1.0
    # Random weights give small logit margins, so a few next-token
    # choices flip: 0.88-0.92 over 24 positions on the three backends.
    print("int8 agreement", quantized)
    assert quantized["next_token_agreement"] >= 0.75
    assert 0.0 <= quantized["generated_token_agreement"] <= 1.0
    beam = record["beam_search"]
    assert beam["num_beams"] == 2 and beam["batch_size"] == 1
    assert beam["beam_over_greedy"] == pytest.approx(
        beam["beam_decoder_ms_per_sample"]
        / beam["greedy_decoder_ms_per_sample"]
    )
    table = (tmp_path / "table.md").read_text()
    assert "Quantized" in table and "Beam search at batch size 1" in table


def test_token_agreement_skips_the_start_token():
    reference = [[0, 5, 6, 7, 8]]
    assert runner.token_agreement(reference, [[9, 5, 6, 1, 1]]) == 0.5


def _fake_record(variant, batch_size=4, encoder_ms=10.0, decoder_ms=40.0):
    return {
        "variant": variant,
        "size": "tiny",
        "encoder_ms_per_sample": encoder_ms,
        "decoder_ms_per_sample": decoder_ms,
        "total_ms_per_sample": (
            None if encoder_ms is None else encoder_ms + decoder_ms
        ),
        "decoder_ms_per_step": decoder_ms / 4,
        "cross_attention_cache_bytes_per_sample": (
            analysis.cross_attention_cache_bytes_per_sample(
                variant_config("tiny", variant), 2, 8
            )
        ),
        "setting": {
            "batch_size": batch_size,
            "passages": 2,
            "passage_length": 8,
            "output_length": 4,
            "dtype": "float32",
            "repeats": 1,
            "decoder_only": encoder_ms is None,
        },
        "config": variant_config("tiny", variant),
        "machine": {"backend": "fake", "keras": "0"},
    }


def test_roofline_bound_is_the_slower_of_compute_and_memory():
    # 2 GFLOP at 4 GFLOP/s = 0.5 s; 4 GB at 2 GB/s = 2 s.
    assert roofline.bound_seconds(2e9, 4e9, 4e9, 2e9) == (2.0, "memory")
    assert roofline.bound_seconds(2e9, 1e8, 4e9, 2e9) == (0.5, "compute")
    assert roofline.bound_seconds(2e9, None, 4e9, 2e9) == (0.5, "compute")


def test_roofline_bounds_follow_the_cost_model():
    record = _fake_record("lsa_mq", batch_size=4)
    machine = {"peak_flops_per_s": 1e9, "bandwidth_bytes_per_s": 1e8}
    bounds = roofline.roofline_bounds(record, machine)
    config = record["config"]
    flops = analysis.flops_per_sample(config, 2, 8, 4)
    step = analysis.decoding_step_costs(
        config, 2, 8, 5, 4, include_logits=True
    )["total"]
    encoder_ms = 1e3 * 2 * flops["encoder_total"] / 1e9
    step_s = max(2 * step["flops"] / 1e9, step["bytes"] / 1e8)
    projection_s = 2 * flops["decoder_cross_attention_kv_projections"] / 1e9
    step_ms = 1e3 * (step_s / 4 + projection_s / 4)
    assert bounds["encoder_bound_ms_per_sample"] == pytest.approx(encoder_ms)
    assert bounds["encoder_measured_over_bound"] == pytest.approx(
        10.0 / encoder_ms
    )
    assert bounds["decoder_step_bound_ms_per_sample"] == pytest.approx(step_ms)
    assert bounds["decoder_step_measured_over_bound"] == pytest.approx(
        10.0 / step_ms
    )
    assert bounds["decoder_step_bound_by"] == "memory"
    # Without a measured matmul rate there is no second bound.
    assert bounds["decoder_step_matvec_bound_ms_per_sample"] is None
    assert bounds["decoder_step_measured_over_matvec_bound"] is None
    # At a matmul rate of 5e7 B/s the step's bytes take twice as long.
    bounds = roofline.roofline_bounds(
        record, {**machine, "matvec_bytes_per_s": 5e7}
    )
    matvec_ms = 1e3 * (
        max(2 * step["flops"] / 1e9, step["bytes"] / 5e7) / 4 + projection_s / 4
    )
    assert bounds["decoder_step_matvec_bound_ms_per_sample"] == (
        pytest.approx(matvec_ms)
    )
    assert bounds["decoder_step_measured_over_matvec_bound"] == (
        pytest.approx(10.0 / matvec_ms)
    )
    decoder_only = _fake_record("lsa_mq", encoder_ms=None)
    bounds = roofline.roofline_bounds(decoder_only, machine)
    assert bounds["encoder_measured_over_bound"] is None


def test_peer_ratios_divide_keras_fido_by_the_peer():
    ratios = peer.peer_ratios(
        _fake_record("fid", encoder_ms=30.0, decoder_ms=10.0),
        {
            "encoder_ms_per_sample": 10.0,
            "decoder_ms_per_sample": 20.0,
            "total_ms_per_sample": 30.0,
        },
    )
    assert ratios == pytest.approx(
        {"encoder": 3.0, "decoder": 0.5, "total": 40.0 / 30.0}
    )
    ratios = peer.peer_ratios(
        _fake_record("fid", encoder_ms=None, decoder_ms=10.0),
        {
            "encoder_ms_per_sample": None,
            "decoder_ms_per_sample": 20.0,
            "total_ms_per_sample": None,
        },
    )
    assert ratios == {"encoder": None, "decoder": 0.5, "total": None}


def test_peer_rejects_fido_configs():
    pytest.importorskip("transformers")
    with pytest.raises(ValueError, match="cross_attention_interval=3"):
        peer.t5_config(variant_config("tiny", "lsa"))


def test_fake_run_with_every_timed_mode_writes_documented_fields(
    tmp_path, monkeypatch
):
    """CLI wiring, JSON keys and arithmetic with fixed numbers."""
    monkeypatch.setattr(
        runner,
        "run_variant",
        lambda variant, **setting: _fake_record(
            variant,
            batch_size=setting["batch_size"],
            decoder_ms=8.0 * setting["passages"],
        ),
    )
    monkeypatch.setattr(
        peer,
        "run_transformers_fid",
        lambda *args, **kwargs: {
            "library": "transformers",
            "transformers": "0",
            "torch": "0",
            "threads": 2,
            "encoder_ms_per_sample": 5.0,
            "decoder_ms_per_sample": 32.0,
            "total_ms_per_sample": 37.0,
        },
    )
    monkeypatch.setattr(
        roofline,
        "measure_machine",
        lambda *args, **kwargs: {
            "backend": "fake",
            "peak_flops_per_s": 1e9,
            "bandwidth_bytes_per_s": 1e9,
            "matmul": {"size": 64},
            "copy": {"mib": 1},
        },
    )
    path = tmp_path / "r.json"
    main(
        TINY
        + [
            "--batch-size",
            "4",
            "--output-length",
            "4",
            "--variants",
            "fid,lsa,lsa_mq",
            "--roofline",
            "--peer",
            "transformers",
            "--sweep",
            "passages=1,2,4",
            "--sweep",
            "output_length=2,4",
            "--sweep",
            "batch_size=1,2",
            "--json",
            str(path),
            "--out-dir",
            str(tmp_path / "out"),
        ]
    )
    result = json.loads(path.read_text())
    assert {"command", "setting", "machine", "records", "roofline"} <= set(
        result
    )
    fid = result["records"][0]
    # decoder 8 ms x 2 passages = 16; peer 32: keras_fido twice as fast.
    assert result["peer"]["ratios"] == pytest.approx(
        {"encoder": 2.0, "decoder": 0.5, "total": 26.0 / 37.0}
    )
    assert result["peer"]["keras_fido"]["decoder_ms_per_sample"] == 16.0
    assert fid["roofline"]["decoder_step_measured_ms_per_sample"] == 4.0
    assert set(result["sweeps"]) == {"passages", "output_length", "batch_size"}
    passages = result["sweeps"]["passages"]
    assert passages["values"] == [1, 2, 4]
    assert [r["decoder_ms_per_sample"] for r in passages["records"]["4"]] == [
        32.0
    ] * 3
    for name in ("time_per_sample", "sweep_passages", "sweep_output_length"):
        assert (tmp_path / "out" / f"{name}.png").stat().st_size > 1000
    assert (tmp_path / "out" / "sweep_batch_size.png").exists()

    # Records-only JSON from before the run-level keys also documents.
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"records": result["records"]}))
    docs = tmp_path / "performance.md"
    main(["--docs", str(docs), "--docs-from", str(path), str(old)])
    text = docs.read_text()
    assert "## Run 2:" in text and "(command not recorded)" in text
    assert "| decoder | 16.00 | 32.00 | 0.50 |" in text
    assert "](out/sweep_passages.png)" in text
    assert "against passages per sample" in text
    assert "XLA_FLAGS" not in text

    # A run under other XLA flags is the same machine, its flags shown
    # with the run.
    flagged = dict(result, machine=dict(result["machine"], xla_flags="--x=1"))
    other = tmp_path / "flagged.json"
    other.write_text(json.dumps(flagged))
    main(["--docs", str(docs), "--docs-from", str(path), str(other)])
    text = docs.read_text()
    assert text.count("- CPU: ") == 1
    assert text.count("Run with `XLA_FLAGS=--x=1`.") == 1
    assert "no accelerator figure is recorded" in text

    # A run on a GPU is an accelerator figure.
    gpu = dict(result, machine=dict(result["machine"], devices=["cuda:0"]))
    other.write_text(json.dumps(gpu))
    main(["--docs", str(docs), "--docs-from", str(path), str(other)])
    assert "no accelerator figure is recorded" not in docs.read_text()


def test_sweep_option_parses_names_values_and_all():
    assert _parse_sweeps(["passages=4,1,2", "batch_size"]) == {
        "passages": [1, 2, 4],
        "batch_size": [1, 2, 4, 8],
    }
    assert set(_parse_sweeps(["all"])) == {
        "passages",
        "output_length",
        "batch_size",
    }
    with pytest.raises(ValueError, match="Received: 'layers=2'"):
        _parse_sweeps(["layers=2"])
    with pytest.raises(ValueError, match="positive integers"):
        _parse_sweeps(["passages=0,x"])


def test_max_batch_search_doubles_then_bisects():
    def measure(batch):
        return 100 * batch, None  # 100 bytes per sample

    result = memory.search_max_batch(measure, budget_bytes=3700, cap=1024)
    assert result["max_batch"] == 37
    assert not result["cap_hit"] and result["limited_by"] == "budget"
    tried = [t["batch_size"] for t in result["trials"]]
    assert tried[:7] == [1, 2, 4, 8, 16, 32, 64]
    assert tried[7:] == [48, 40, 36, 38, 37]

    capped = memory.search_max_batch(measure, budget_bytes=10**9, cap=100)
    assert capped["max_batch"] == 100 and capped["cap_hit"]
    assert [t["batch_size"] for t in capped["trials"]][-2:] == [64, 100]

    def precheck(batch):
        return "analytic cache" if batch > 5 else None

    checked = memory.search_max_batch(measure, 10**9, 64, precheck=precheck)
    assert checked["max_batch"] == 5
    assert checked["limited_by"] == "analytic cache"
    assert all(
        t["required_bytes"] is None for t in checked["trials"] if not t["fits"]
    )

    def crashes(batch):
        return (None, "crash: exit -9") if batch > 2 else (1, None)

    assert memory.search_max_batch(crashes, 10**9, 64)["max_batch"] == 2
    nothing = memory.search_max_batch(lambda b: (10, None), 5, 64)
    assert nothing["max_batch"] == 0 and nothing["limited_by"] == "budget"


def test_extrapolate_and_required_bytes():
    assert memory.extrapolate_bytes([(1, 150)], 4) is None
    assert memory.extrapolate_bytes([(2, 300), (1, 200)], 4) == 500
    assert (
        memory.required_bytes(
            {"generate_bytes": 5, "weight_bytes": 3, "device_peak_bytes": None}
        )
        == 8
    )
    assert (
        memory.required_bytes(
            {"generate_bytes": 5, "weight_bytes": 3, "device_peak_bytes": 11}
        )
        == 11
    )


def test_a_crashed_child_is_reported_by_its_exception_line():
    # JAX prints a note after the exception; the reason names the error.
    stderr = (
        "Traceback (most recent call last):\n  File 'x.py', line 1\n"
        "jax.errors.JaxRuntimeError: RESOURCE_EXHAUSTED: out of memory\n"
        "--------------------\n"
        "For simplicity, JAX has removed its internal frames.\n"
    )
    assert memory._error_line(stderr) == (
        "jax.errors.JaxRuntimeError: RESOURCE_EXHAUSTED: out of memory"
    )
    assert memory._error_line("Killed\n") == "Killed"
    assert memory._error_line("") == ""


def test_max_batch_mode_measures_generate_in_a_subprocess(tmp_path):
    path = tmp_path / "m.json"
    main(
        TINY
        + [
            "--output-length",
            "2",
            "--variants",
            "lsa_mq",
            "--decoder-only",
            "--max-batch",
            "--max-batch-cap",
            "1",
            "--memory-timeout-s",
            "300",
            "--json",
            str(path),
            "--out-dir",
            str(tmp_path),
        ]
    )
    result = json.loads(path.read_text())["memory"]
    assert result["budget_gib"] == 16.0 and result["cap"] == 1
    (variant,) = result["variants"]
    assert variant["max_batch"] == 1 and variant["cap_hit"]
    assert variant["limited_by"] == "cap"
    (measurement,) = variant["measurements"]
    assert measurement["peak_rss_bytes"] >= measurement["baseline_rss_bytes"]
    assert measurement["generate_bytes"] == (
        measurement["peak_rss_bytes"] - measurement["baseline_rss_bytes"]
    )
    assert variant["required_bytes_at_max_batch"] == memory.required_bytes(
        measurement
    )
    assert variant["cross_attention_cache_bytes_per_sample"] == (
        analysis.cross_attention_cache_bytes_per_sample(
            variant_config("tiny", "lsa_mq"), 2, 8
        )
    )
    assert "| lsa_mq | 1 (cap) | cap |" in (tmp_path / "table.md").read_text()


@pytest.mark.skipif(not HAS_TRANSFORMERS, reason="needs torch, transformers")
def test_transformers_peer_decodes_every_step_fid_style():
    result = peer.run_transformers_fid(
        variant_config("tiny", "fid"),
        batch_size=1,
        passages=2,
        passage_length=4,
        output_length=2,
        repeats=1,
        threads=1,
    )
    assert result["library"] == "transformers"
    assert result["encoder_ms_per_sample"] > 0
    assert result["decoder_ms_per_sample"] > 0
    assert result["total_ms_per_sample"] == pytest.approx(
        result["encoder_ms_per_sample"] + result["decoder_ms_per_sample"]
    )


def test_markdown_report_of_a_memory_run_has_no_timing_claims():
    result = {
        "command": "python -m keras_fido.benchmark --max-batch",
        "setting": _fake_record("fid")["setting"] | {"size": "tiny"},
        "memory": {
            "budget_gib": 1.0,
            "cap": 8,
            "timeout_s": 10.0,
            "method": "peak RSS - baseline RSS + weights",
            "variants": [
                {
                    "variant": "fid",
                    "max_batch": 3,
                    "cap_hit": False,
                    "limited_by": "budget",
                    "required_bytes_at_max_batch": 2**29,
                    "cross_attention_cache_bytes_per_sample": 2**20,
                    "trials": [{"batch_size": b} for b in (1, 2, 4, 3)],
                }
            ],
        },
    }
    text = report.markdown_report(result)
    assert "| fid | 3 | budget | 0.50 | 1.00 | 1, 2, 4, 3 |" in text
    assert "median" not in text
