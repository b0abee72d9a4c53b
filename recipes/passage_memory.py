"""FiDO with passage memory (LUMEN): quality against the live fraction.

    KERAS_BACKEND=jax python recipes/passage_memory.py \
        --json docs/quality/passage_memory/passage_memory_cpu_jax.json

On the embedded country task, a FiDO reader whose encoder has six layers
is trained with the quickstart's recipe (`--seed`), every layer live, its
sequences packed as a question block, then the passage (the layout a
memory encoder reads). As LUMEN starts from one trained checkpoint, each
live fraction is then fine-tuned from those weights once per seed (the
seed sets the fine-tuning's shuffling): the last `fraction * 6` encoder
layers live, the memory encoder (the first layers, the encoder's
embedding and position bias) frozen, so the passages' memory is what a
store built from the trained reader holds. Fraction 1 (FiDO) gets the
same fine-tuning with nothing frozen. Recorded per fraction: test EM
(mean and spread over seeds), EM by kind of question, the encoder's
multiplications per query (the memory layers' work on passages is done
once per passage, offline) and greedy `generate` ms/sample.
`tools/quality_docs.py` renders the JSON into `docs/quality.md`.
"""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import argparse
import json
import os
import sys
import time
from fractions import Fraction

from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

import keras
import numpy as np

from keras_fido import quickstart
from keras_fido.analysis import encoder_flops_per_query
from keras_fido.metrics import evaluate_predictions
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models.passage_memory import freeze_memory_encoder

ENCODER_LAYERS = 6
FRACTIONS = ("1", "1/2", "1/3", "1/6")


def reader_config(vocabulary_size, live_layers, question_length, recipe):
    """The quality ladder's FiDO (mini sizes, LSA 2, one K/V head) with a
    six-layer encoder whose last `live_layers` are live."""
    width, heads = 96, 4
    return dict(
        vocabulary_size=vocabulary_size,
        encoder_num_layers=ENCODER_LAYERS,
        encoder_hidden_dim=width,
        encoder_intermediate_dim=2 * width,
        encoder_num_heads=heads,
        decoder_num_layers=2,
        decoder_hidden_dim=width,
        decoder_intermediate_dim=2 * width,
        decoder_num_heads=heads,
        decoder_num_key_value_heads=1,
        cross_attention_interval=2,
        key_value_dim=32,
        dropout=0.0,
        copy_attention=recipe.copy_attention,
        copy_key_offsets=tuple(recipe.copy_key_offsets),
        encoder_live_layers=live_layers,
        encoder_question_length=question_length,
    )


def live_layers(fraction):
    """Live layers of the six for a fraction such as `"1/3"`."""
    value = Fraction(fraction)
    layers = value * ENCODER_LAYERS
    if value <= 0 or value > 1 or layers.denominator != 1:
        raise ValueError(
            f"A live fraction must be k/{ENCODER_LAYERS} of the "
            f"{ENCODER_LAYERS} encoder layers, in (0, 1]. Received: "
            f"{fraction!r}"
        )
    return int(layers)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--fractions",
        default=",".join(FRACTIONS),
        help="comma-separated live fractions of the 6 encoder layers",
    )
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument(
        "--question-length",
        type=int,
        default=24,
        help="positions of the question block (the task's longest "
        "question is 21 tokens)",
    )
    p.add_argument(
        "--finetune-epochs",
        type=int,
        default=1,
        help="epochs of each fraction's fine-tuning from the full reader",
    )
    p.add_argument("--finetune-learning-rate", type=float, default=5e-4)
    p.add_argument("--json", default=None)
    p.add_argument(
        "--replot",
        action="store_true",
        help="only redraw the plot beside --json from its record",
    )
    args, rest = p.parse_known_args(argv)
    # Everything else is the quickstart's recipe (epochs, vocabulary, ...).
    recipe = quickstart.parse_args(rest)
    args.fractions = [f for f in args.fractions.split(",") if f]
    for fraction in args.fractions:
        live_layers(fraction)  # refuses bad fractions before any work
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    return args, recipe


def measure(reader, test, batch_size):
    predictions, seconds = quickstart.evaluate(reader, test, batch_size)
    scores = evaluate_predictions(predictions, [e["answers"] for e in test])
    return {
        "test_em": scores["exact_match"],
        "test_em_by_fact": quickstart.em_by_fact(test, predictions),
        "generate_ms_per_sample": 1e3 * seconds / len(test),
    }


def train_full_reader(args, recipe, task):
    """The full reader every fraction starts from (seed `recipe.seed`):
    every encoder layer live, sequences in the memory layout."""
    splits, tokenizer, preprocessor, train = task
    config = reader_config(
        tokenizer.vocabulary_size(),
        ENCODER_LAYERS,
        args.question_length,
        recipe,
    )
    reader, seconds, loss = quickstart.train_reader(
        f"full reader seed {recipe.seed}", config, preprocessor, train, recipe
    )
    record = measure(reader, splits["test"], recipe.batch_size)
    record.update(train_seconds=seconds, final_train_loss=float(loss))
    print(f"full reader: test EM {record['test_em']:.1f}", flush=True)
    return reader.backbone.get_weights(), record


def run_seed(seed, args, recipe, task, weights):
    """Every fraction fine-tuned from the full reader's `weights` with
    this seed (its shuffling and the order of the examples)."""
    splits, tokenizer, preprocessor, train = task
    finetune = argparse.Namespace(
        **{
            **vars(recipe),
            "seed": seed,
            "epochs": args.finetune_epochs,
            "learning_rate": args.finetune_learning_rate,
        }
    )
    runs = {}
    for fraction in args.fractions:
        live = live_layers(fraction)

        def prepare(backbone, live=live):
            backbone.set_weights(weights)
            if live < ENCODER_LAYERS:
                freeze_memory_encoder(backbone)

        config = reader_config(
            tokenizer.vocabulary_size(), live, args.question_length, recipe
        )
        reader, seconds, loss = quickstart.train_reader(
            f"live {fraction} seed {seed}",
            config,
            preprocessor,
            train,
            finetune,
            prepare=prepare,
        )
        record = measure(reader, splits["test"], recipe.batch_size)
        record.update(
            seed=seed,
            finetune_seconds=seconds,
            final_train_loss=float(loss),
            trainable_parameters=int(
                sum(int(np.prod(v.shape)) for v in reader.trainable_weights)
            ),
        )
        print(
            f"live {fraction} seed {seed}: test EM {record['test_em']:.1f}, "
            f"{record['generate_ms_per_sample']:.1f} ms/sample",
            flush=True,
        )
        runs[fraction] = record
    return runs


def summarize(fraction, runs, config, recipe, question_length):
    ems = [r["test_em"] for r in runs]
    facts = runs[0]["test_em_by_fact"]
    flops = encoder_flops_per_query(
        config, recipe.passages, question_length + recipe.passage_length
    )
    return {
        "live_fraction": fraction,
        "encoder_live_layers": config["encoder_live_layers"],
        "encoder_num_layers": config["encoder_num_layers"],
        "test_em_mean": float(np.mean(ems)),
        "test_em_std": float(np.std(ems)),
        "test_em_by_fact_mean": {
            f: float(np.mean([r["test_em_by_fact"][f] for r in runs]))
            for f in facts
        },
        "encoder_flops_per_query": flops,
        "generate_ms_per_sample": float(
            np.median([r["generate_ms_per_sample"] for r in runs])
        ),
        "runs": runs,
    }


def plot(rows, path):
    """EM against the encoder's multiplications per query, by fraction."""
    from keras_fido.utils.extras import import_optional

    matplotlib = import_optional("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = rows[0]["encoder_flops_per_query"]["per_query"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for row in rows:
        x = row["encoder_flops_per_query"]["per_query"] / base
        ax.errorbar(
            x, row["test_em_mean"], yerr=row["test_em_std"], fmt="o", capsize=3
        )
        label = "FiDO" if row["live_fraction"] == "1" else "FiDO + memory"
        ax.annotate(
            f"{label}, live {row['live_fraction']}",
            (x, row["test_em_mean"]),
            textcoords="offset points",
            xytext=(5, 5),
            fontsize=8,
        )
    ax.set_xlabel("encoder multiplications per query (FiDO = 1)")
    ax.set_ylabel("test EM (mean over seeds)")
    ax.set_title("Embedded country task: passage memory")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args, recipe = parse_args(argv)
    if args.replot:
        with open(args.json) as f:
            rows = json.load(f)["fractions"]
        plot(rows, os.path.splitext(args.json)[0] + ".png")
        return None
    start = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    splits, tokenizer, _ = quickstart.build_task(recipe)
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer,
        num_passages=recipe.passages,
        passage_length=args.question_length + recipe.passage_length,
        decoder_sequence_length=recipe.answer_length,
        question_length=args.question_length,
    )
    train_examples = quickstart.training_examples(recipe, splits["train"])
    train = quickstart.to_arrays(preprocessor, train_examples)
    task = (splits, tokenizer, preprocessor, train)
    weights, full_reader = train_full_reader(args, recipe, task)
    by_seed = [run_seed(s, args, recipe, task, weights) for s in args.seeds]
    rows = []
    for fraction in args.fractions:
        config = reader_config(
            tokenizer.vocabulary_size(),
            live_layers(fraction),
            args.question_length,
            recipe,
        )
        runs = [seed_runs[fraction] for seed_runs in by_seed]
        rows.append(
            summarize(fraction, runs, config, recipe, args.question_length)
        )
    full = rows[0]["encoder_flops_per_query"]["per_query"]
    print("\nlive  test EM (mean +- std)  encoder mults/query  ms/sample")
    for row in rows:
        flops = row["encoder_flops_per_query"]["per_query"]
        print(
            f"{row['live_fraction']:4s}  {row['test_em_mean']:6.1f} +- "
            f"{row['test_em_std']:4.1f}       {flops / full:6.2f} x       "
            f"{row['generate_ms_per_sample']:8.1f}"
        )
    record = {
        "name": "passage_memory",
        "command": "KERAS_BACKEND=jax python recipes/passage_memory.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "backend": keras.config.backend(),
        "seeds": args.seeds,
        "settings": {
            **{k: v for k, v in vars(recipe).items() if k != "json"},
            "question_length": args.question_length,
            "finetune_epochs": args.finetune_epochs,
            "finetune_learning_rate": args.finetune_learning_rate,
            "copy_head": "pointer" if recipe.copy_attention else None,
        },
        "full_reader": full_reader,
        "fractions": rows,
        "run_total_seconds": time.perf_counter() - start,
        # Other work on the machine shows here (cores busy, 1-minute mean).
        "load_average": {"start": load_at_start, "end": os.getloadavg()[0]},
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
        plot(rows, os.path.splitext(args.json)[0] + ".png")
    return record


if __name__ == "__main__":
    main()
