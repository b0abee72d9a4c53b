"""Uptraining recovers most of what converting T5.1.1 to FiDO costs.

With `KERAS_FIDO_UPTRAINING_RECORDS=DIR` set, the run's figures are also
recorded as `DIR/uptraining_cpu_<backend>.json`, the records from which
`tools/uptraining_docs.py` writes the table of docs/conversion.md:

    KERAS_FIDO_UPTRAINING_RECORDS=docs/uptraining KERAS_BACKEND=jax \
        python -m pytest tests/recipes/test_uptrain_fido.py
"""

import json
import os
import platform

import pytest

pytest.importorskip("transformers", reason="the source T5 needs transformers")

SOURCE_STEPS = 200  # the source T5's own (brief) pretraining
UPTRAINING_STEPS = 20  # 10% of it
EVAL_DOCUMENTS = 64
INPUT_LENGTH = 32
BATCH_SIZE = 16


@pytest.fixture(scope="module")
def source_checkpoint(tmp_path_factory):
    """A tiny T5.1.1 (width 32, 2+4 layers, 4 heads), pretrained briefly
    with span corruption on the embedded corpus, saved as a checkpoint."""
    import tensorflow as tf

    from keras_fido.convert import tokenizer_from_spiece
    from keras_fido.data import corpus_lines
    from keras_fido.data import span_corruption_dataset
    from keras_fido.data import train_sentencepiece
    from keras_fido.testing.t5_checkpoints import VOCAB_SIZE
    from keras_fido.testing.t5_checkpoints import pretrain_t5
    from keras_fido.testing.t5_checkpoints import write_t5_checkpoint
    from keras_fido.testing.t5_reference import tiny_t5
    from keras_fido.testing.t5_reference import untie_output_projection

    lines = corpus_lines()
    spiece = train_sentencepiece(
        lines, vocab_size=200, character_coverage=0.995
    )
    tokenizer = tokenizer_from_spiece(spiece, extra_ids=20)
    # The recipe holds out the last documents; the source never sees them.
    batches = list(
        span_corruption_dataset(
            tf.data.Dataset.from_tensor_slices(lines[:-EVAL_DOCUMENTS]),
            tokenizer,
            input_length=INPUT_LENGTH,
            batch_size=BATCH_SIZE,
            seed=7,
        ).as_numpy_iterator()
    )
    model = untie_output_projection(
        tiny_t5(vocab_size=VOCAB_SIZE, num_decoder_layers=4)
    )
    pretrain_t5(model, batches, SOURCE_STEPS)
    directory = tmp_path_factory.mktemp("source")
    return write_t5_checkpoint(model, directory, spiece_model=spiece)


def record(figures, source_checkpoint):
    """Writes the figures as a docs record when asked to (see above)."""
    directory = os.environ.get("KERAS_FIDO_UPTRAINING_RECORDS")
    if not directory:
        return
    import keras

    backend = keras.config.backend()
    source = figures["source_loss"][str(source_checkpoint)]
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"uptraining_cpu_{backend}.json")
    with open(path, "w") as file:
        json.dump(
            {
                **figures,
                "source_loss": {f"tiny_t5_{SOURCE_STEPS}_steps": source},
                "command": f"KERAS_FIDO_UPTRAINING_RECORDS={directory} "
                f"KERAS_BACKEND={backend} python -m pytest "
                "tests/recipes/test_uptrain_fido.py",
                "backend": backend,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
                "source_steps": SOURCE_STEPS,
                "uptraining_steps": UPTRAINING_STEPS,
            },
            file,
            indent=1,
        )


def test_uptraining_closes_most_of_the_loss_gap(
    source_checkpoint, tmp_path, load_recipe
):
    import keras_hub

    output = tmp_path / "uptrain"
    figures = load_recipe("uptrain_fido").main(
        [
            "--encoder-checkpoint",
            str(source_checkpoint),
            "--cross-attention-interval",
            "2",
            "--num-key-value-heads",
            "1",
            "--output",
            str(output),
            "--data",
            "corpus",
            "--steps",
            str(UPTRAINING_STEPS),
            "--batch-size",
            str(BATCH_SIZE),
            "--input-length",
            str(INPUT_LENGTH),
            "--learning-rate",
            "0.01",
            "--eval-documents",
            str(EVAL_DOCUMENTS),
            "--eval-batches",
            "4",
            "--save-every",
            str(UPTRAINING_STEPS),
        ]
    )
    record(figures, source_checkpoint)
    source = figures["source_loss"][str(source_checkpoint)]
    before = figures["converted_loss_before"]
    after = figures["converted_loss_after"]
    print(
        f"\nspan-corruption loss: source {source:.3f}, converted "
        f"{before:.3f}, after {UPTRAINING_STEPS} uptraining steps "
        f"{after:.3f}"
    )
    # Mean-pooling K/V and dropping half the cross-attention cost loss;
    # a few steps win most of it back.
    assert before > source + 0.5
    assert after < before
    assert after - source < 0.5 * (before - source)

    with open(output / "uptraining.json") as file:
        assert json.load(file)["converted_loss_after"] == after
    with open(output / "converted" / "uptraining_report.json") as file:
        report = json.load(file)
    assert len(report["mean_pooled"]) == 12  # K and V, self and cross
    assert len(report["dropped"]) == 10  # cross-attention of layers 1, 3
    reader = keras_hub.models.Seq2SeqLM.from_preset(figures["preset"])
    assert reader.backbone.cross_attention_layer_indices == [2, 4]
    assert reader.backbone.decoder_num_key_value_heads == 1
