"""The recipes and the quickstart run end to end on the embedded task."""

import json

import pytest

from keras_fido.data import write_country_qa


@pytest.fixture(scope="module")
def country_qa_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("country_qa")
    write_country_qa(str(directory), num_passages=2)
    return directory


def test_finetune_then_evaluate_writes_a_preset_and_predictions(
    country_qa_dir, tmp_path, capsys, load_recipe
):
    output = tmp_path / "run"
    finetune = load_recipe("finetune_qa")
    finetune.main(
        [
            "--train",
            str(country_qa_dir / "train.json"),
            "--validation",
            str(country_qa_dir / "validation.json"),
            "--preset",
            "fido_tiny",
            "--train-tokenizer",
            "400",
            "--output",
            str(output),
            "--num-passages",
            "2",
            "--passage-length",
            "24",
            "--answer-length",
            "6",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--train-limit",
            "8",
            "--validation-limit",
            "2",
        ]
    )
    assert (output / "preset" / "config.json").exists()
    assert (output / "best.weights.h5").exists()

    predictions = tmp_path / "predictions.jsonl"
    evaluate = load_recipe("evaluate_qa")
    evaluate.main(
        [
            "--preset",
            str(output / "preset"),
            "--data",
            str(country_qa_dir / "test.json"),
            "--limit",
            "3",
            "--batch-size",
            "2",
            "--predictions",
            str(predictions),
        ]
    )
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(lines) == 3
    assert all(isinstance(line["prediction"], str) for line in lines)
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["count"] == 3


def test_finetune_refuses_a_named_preset_without_a_vocabulary(
    country_qa_dir, tmp_path, load_recipe
):
    finetune = load_recipe("finetune_qa")
    with pytest.raises(SystemExit, match="--train-tokenizer"):
        finetune.main(
            [
                "--train",
                str(country_qa_dir / "train.json"),
                "--validation",
                str(country_qa_dir / "validation.json"),
                "--preset",
                "fido_tiny",
                "--output",
                str(tmp_path / "run"),
            ]
        )


def test_quickstart_reports_both_readers(tmp_path):
    from keras_fido import quickstart

    out = tmp_path / "figures.json"
    results = quickstart.main(
        [
            "--limit",
            "12",
            "--epochs",
            "1",
            "--batch-size",
            "6",
            "--passages",
            "2",
            "--passage-length",
            "32",
            "--vocabulary-size",
            "500",
            "--json",
            str(out),
        ]
    )
    written = json.loads(out.read_text())
    assert set(written) == {"fido", "fid"} == set(results)
    for figures in written.values():
        assert 0.0 <= figures["test_em"] <= 100.0
        assert figures["test_questions"] == 12
        assert figures["generate_ms_per_sample"] > 0
        rerank = figures["reranking"]
        assert rerank["retrieved_passages"] == 4
        for key in ("precision_at_1_bm25", "precision_at_1_reader"):
            assert 0.0 <= rerank[key] <= 100.0
        assert sum(figures["test_answers_seen_in_training"].values()) <= 12
    assert written["fido"]["cross_attention_layers"] == [2, 4]
    assert written["fid"]["cross_attention_layers"] == [1, 2]


def test_finetune_refuses_to_resume_a_different_architecture(
    country_qa_dir, tmp_path, load_recipe
):
    finetune = load_recipe("finetune_qa")
    output = tmp_path / "run"

    def run(preset):
        finetune.main(
            [
                "--train",
                str(country_qa_dir / "train.json"),
                "--validation",
                str(country_qa_dir / "validation.json"),
                "--preset",
                preset,
                "--train-tokenizer",
                "300",
                "--output",
                str(output),
                "--num-passages",
                "2",
                "--passage-length",
                "16",
                "--answer-length",
                "4",
                "--epochs",
                "0",  # builds, records the run and saves; no training
                "--train-limit",
                "4",
            ]
        )

    run("fido_tiny")
    assert (output / "run_config.json").exists()
    with pytest.raises(SystemExit) as refusal:
        run("fid_tiny")
    message = str(refusal.value)
    assert "backbone.decoder_num_key_value_heads" in message
    assert "backbone.cross_attention_interval" in message
    assert "new --output" in message


def test_quickstart_records_its_settings_and_copy_head(tmp_path):
    from keras_fido import quickstart

    out = tmp_path / "figures.json"
    quickstart.main(
        ["--limit", "6", "--epochs", "1", "--batch-size", "6"]
        + ["--passages", "2", "--passage-length", "24"]
        + ["--vocabulary-size", "400", "--models", "fido"]
        + ["--copy-key-offsets=-2,1", "--json", str(out)]
    )
    settings = json.loads(out.read_text())["fido"]["settings"]
    assert settings["copy_attention"] is True
    assert settings["copy_key_offsets"] == [-2, 1]
    assert settings["split_punctuation"] is True
    assert settings["tokenizer_text"] == "corpus"
    assert settings["vocabulary_size"] == 400


def test_copy_key_offsets_flag_parses_and_names_bad_values(capsys):
    from keras_fido import quickstart

    parse = quickstart.parse_args
    assert parse([]).copy_key_offsets == (-1, 1)
    assert parse(["--copy-key-offsets=none"]).copy_key_offsets == ()
    assert parse(["--copy-key-offsets=-1"]).copy_key_offsets == (-1,)
    with pytest.raises(SystemExit):
        parse(["--copy-key-offsets=left"])
    assert "token offsets such as -1,1" in capsys.readouterr().err
    config = quickstart.reader_configs(100, copy_key_offsets=())["fido"]
    assert config["copy_key_offsets"] == ()


def test_finetune_with_the_copy_head(country_qa_dir, tmp_path, load_recipe):
    finetune = load_recipe("finetune_qa")
    output = tmp_path / "run"
    finetune.main(
        ["--train", str(country_qa_dir / "train.json")]
        + ["--validation", str(country_qa_dir / "validation.json")]
        + ["--preset", "fido_tiny", "--train-tokenizer", "400"]
        + ["--output", str(output), "--num-passages", "2"]
        + ["--passage-length", "24", "--answer-length", "6"]
        + ["--epochs", "1", "--batch-size", "4", "--train-limit", "4"]
        + ["--validation-limit", "2", "--copy-attention"]
    )
    config = json.loads((output / "preset" / "config.json").read_text())
    assert config["config"]["copy_attention"] is True


def test_quality_ladder_refuses_an_unknown_variant(load_recipe):
    ladder = load_recipe("quality_ladder")
    with pytest.raises(ValueError, match="fid_lsa"):
        ladder.parse_args(["--variants", "fid,fido_xl"])


def test_quality_ladder_variants_turn_one_knob_at_a_time(load_recipe):
    ladder = load_recipe("quality_ladder")
    fid, lsa, fido, large = (
        ladder.variant_config(name, 100) for name in ladder.VARIANTS
    )
    assert fid["cross_attention_interval"] == 1
    assert {**lsa, "cross_attention_interval": 1} == fid
    assert fido["decoder_num_key_value_heads"] == 1
    assert {**fido, "decoder_num_key_value_heads": 4} == lsa
    assert large["decoder_hidden_dim"] > fido["decoder_hidden_dim"]
    assert large["encoder_hidden_dim"] == fido["encoder_hidden_dim"]


@pytest.mark.large
def test_quality_ladder_records_seeds_and_a_plot(tmp_path, load_recipe):
    ladder = load_recipe("quality_ladder")
    out = tmp_path / "ladder.json"
    record = ladder.main(
        ["--variants", "fid,fido", "--seeds", "0,1", "--json", str(out)]
        + ["--limit", "6", "--epochs", "1", "--batch-size", "6"]
        + ["--passages", "2", "--passage-length", "24"]
        + ["--vocabulary-size", "400"]
    )
    written = json.loads(out.read_text())
    assert [row["variant"] for row in written["ladder"]] == ["fid", "fido"]
    for row in written["ladder"]:
        assert len(row["runs"]) == 2
        assert row["test_em_std"] >= 0.0
        assert row["generate_ms_per_sample"] > 0
    assert (tmp_path / "ladder.png").stat().st_size > 0
    assert record["plot"].endswith("ladder.png")


@pytest.mark.large
def test_copy_diagnostic_records_both_outputs(tmp_path, load_recipe):
    diagnostic = load_recipe("copy_diagnostic")
    out = tmp_path / "copy.json"
    diagnostic.main(
        ["--steps", "4", "--every", "2", "--batch-size", "4"]
        + ["--vocabulary-size", "60", "--passage-length", "8"]
        + ["--width", "16", "--json", str(out)]
    )
    runs = json.loads(out.read_text())["runs"]
    assert set(runs) == {"t5_output", "copy_head"}
    for run in runs.values():
        assert [p["step"] for p in run["curve"]] == [2, 4]
        assert all(0.0 <= p["copy_accuracy"] <= 100.0 for p in run["curve"])


def test_passage_memory_fractions_are_sixths_of_the_encoder(load_recipe):
    recipe = load_recipe("passage_memory")
    assert [recipe.live_layers(f) for f in recipe.FRACTIONS] == [6, 3, 2, 1]
    for bad in ("0", "1/4", "2"):
        with pytest.raises(ValueError, match="k/6"):
            recipe.live_layers(bad)


@pytest.mark.large
def test_passage_memory_records_every_fraction(tmp_path, load_recipe):
    recipe = load_recipe("passage_memory")
    out = tmp_path / "memory.json"
    recipe.main(
        ["--fractions", "1,1/3", "--seeds", "3", "--json", str(out)]
        + ["--question-length", "12", "--limit", "6", "--epochs", "1"]
        + ["--batch-size", "6", "--passages", "2", "--passage-length", "24"]
        + ["--vocabulary-size", "400"]
    )
    written = json.loads(out.read_text())
    rows = written["fractions"]
    assert [row["encoder_live_layers"] for row in rows] == [6, 2]
    assert all([r["seed"] for r in row["runs"]] == [3] for row in rows)
    full, third = (row["encoder_flops_per_query"]["per_query"] for row in rows)
    assert third < full / 2
    frozen = rows[1]["runs"][0]["trainable_parameters"]
    assert frozen < rows[0]["runs"][0]["trainable_parameters"]
    assert (tmp_path / "memory.png").stat().st_size > 0
