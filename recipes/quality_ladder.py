"""FiD to FiDO one change at a time: quality against decoding cost.

    KERAS_BACKEND=jax python recipes/quality_ladder.py \
        --json docs/quality/ladder/ladder_cpu_jax.json

The paper's ladder (its Table 3 and Figure 3) in miniature, on the
embedded country task: vanilla FiD; FiD with layer-sparse cross-attention
(LSA); LSA and multi-query attention (FiDO, encoder and decoder of one
size); FiDO with a decoder two sizes larger than its encoder. Every
variant is trained from scratch with the quickstart's recipe and budget
(same data, vocabulary, epochs, schedule, copy head) for each seed, and
measured in the same run: test EM (mean and spread over seeds), EM by
kind of question, parameters, and greedy `generate` ms/sample on the test
questions (median over seeds). `tools/quality_docs.py` renders the JSON
into `docs/quality.md`, with the plot this recipe writes beside it.
"""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import argparse
import json
import os
import sys
import time

from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

import keras
import numpy as np

from keras_fido import quickstart
from keras_fido.metrics import evaluate_predictions

# Miniature T5 sizes: (layers, width, heads); the MLP is twice the width.
SIZES = {
    "mini": (2, 96, 4),
    "small": (3, 120, 4),
    "base": (4, 144, 6),
}
ENCODER_SIZE = "mini"

# name: (decoder size, cross_attention_interval, K/V heads or None = all)
VARIANTS = {
    "fid": ("mini", 1, None),
    "fid_lsa": ("mini", 2, None),
    "fido": ("mini", 2, 1),
    "fido_larger_decoder": ("base", 2, 1),
}


def variant_config(
    name, vocabulary_size, copy_attention=True, copy_key_offsets=(-1, 1)
):
    """The backbone config of a ladder variant; unknown names are refused."""
    if name not in VARIANTS:
        raise ValueError(
            f"Unknown ladder variant {name!r}. Known variants: "
            f"{', '.join(VARIANTS)}"
        )
    decoder_size, interval, kv_heads = VARIANTS[name]
    enc_layers, enc_width, enc_heads = SIZES[ENCODER_SIZE]
    dec_layers, dec_width, dec_heads = SIZES[decoder_size]
    return dict(
        vocabulary_size=vocabulary_size,
        encoder_num_layers=enc_layers,
        encoder_hidden_dim=enc_width,
        encoder_intermediate_dim=2 * enc_width,
        encoder_num_heads=enc_heads,
        decoder_num_layers=dec_layers,
        decoder_hidden_dim=dec_width,
        decoder_intermediate_dim=2 * dec_width,
        decoder_num_heads=dec_heads,
        decoder_num_key_value_heads=kv_heads or dec_heads,
        cross_attention_interval=interval,
        key_value_dim=32,
        dropout=0.0,
        copy_attention=copy_attention,
        copy_key_offsets=tuple(copy_key_offsets),
    )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, from: {', '.join(VARIANTS)}",
    )
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--json", default=None)
    p.add_argument(
        "--plot",
        default=None,
        help="PNG of EM against ms/sample (default: beside --json)",
    )
    args, rest = p.parse_known_args(argv)
    # Everything else is the quickstart's recipe (epochs, vocabulary, ...).
    recipe = quickstart.parse_args(rest)
    args.variants = [v for v in args.variants.split(",") if v]
    for name in args.variants:
        variant_config(name, 1)  # refuses unknown names before any work
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    return args, recipe


def run_variant(name, seed, recipe, task):
    """Trains one variant for one seed; returns its measurements."""
    splits, tokenizer, preprocessor, train = task
    recipe = argparse.Namespace(**{**vars(recipe), "seed": seed})
    config = variant_config(
        name,
        tokenizer.vocabulary_size(),
        recipe.copy_attention,
        recipe.copy_key_offsets,
    )
    reader, train_s, loss = quickstart.train_reader(
        f"{name} seed {seed}", config, preprocessor, train, recipe
    )
    test = splits["test"]
    predictions, generate_s = quickstart.evaluate(
        reader, test, recipe.batch_size
    )
    scores = evaluate_predictions(predictions, [e["answers"] for e in test])
    record = {
        "seed": seed,
        "test_em": scores["exact_match"],
        "test_em_by_fact": quickstart.em_by_fact(test, predictions),
        "generate_ms_per_sample": 1e3 * generate_s / len(test),
        "train_seconds": train_s,
        "final_train_loss": float(loss),
        "parameters": int(reader.backbone.count_params()),
    }
    print(
        f"{name} seed {seed}: test EM {record['test_em']:.1f}, "
        f"{record['generate_ms_per_sample']:.1f} ms/sample",
        flush=True,
    )
    return record


def summarize(name, runs, config):
    ems = [r["test_em"] for r in runs]
    facts = runs[0]["test_em_by_fact"]
    return {
        "variant": name,
        "cross_attention_interval": config["cross_attention_interval"],
        "decoder_num_key_value_heads": config["decoder_num_key_value_heads"],
        "decoder_size": VARIANTS[name][0],
        "encoder_size": ENCODER_SIZE,
        "parameters": runs[0]["parameters"],
        "test_em_mean": float(np.mean(ems)),
        "test_em_std": float(np.std(ems)),
        "test_em_by_fact_mean": {
            f: float(np.mean([r["test_em_by_fact"][f] for r in runs]))
            for f in facts
        },
        "generate_ms_per_sample": float(
            np.median([r["generate_ms_per_sample"] for r in runs])
        ),
        "runs": runs,
    }


def plot(ladder, path):
    from keras_fido.utils.extras import import_optional

    matplotlib = import_optional("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for row in ladder:
        ax.errorbar(
            row["generate_ms_per_sample"],
            row["test_em_mean"],
            yerr=row["test_em_std"],
            fmt="o",
            capsize=3,
        )
        ax.annotate(
            row["variant"],
            (row["generate_ms_per_sample"], row["test_em_mean"]),
            textcoords="offset points",
            xytext=(5, 5),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlabel("greedy generate, ms/sample (log)")
    ax.set_ylabel("test EM (mean over seeds)")
    ax.set_title("Embedded country task: quality against decoding cost")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args, recipe = parse_args(argv)
    start = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    splits, tokenizer, preprocessor = quickstart.build_task(recipe)
    train_examples = quickstart.training_examples(recipe, splits["train"])
    train = quickstart.to_arrays(preprocessor, train_examples)
    task = (splits, tokenizer, preprocessor, train)
    ladder = []
    for name in args.variants:
        runs = [run_variant(name, s, recipe, task) for s in args.seeds]
        config = variant_config(
            name,
            tokenizer.vocabulary_size(),
            recipe.copy_attention,
            recipe.copy_key_offsets,
        )
        ladder.append(summarize(name, runs, config))
    print("\nvariant               params  test EM (mean +- std)  ms/sample")
    for row in ladder:
        print(
            f"{row['variant']:20s} {row['parameters']:8,}  "
            f"{row['test_em_mean']:6.1f} +- {row['test_em_std']:4.1f}       "
            f"{row['generate_ms_per_sample']:8.1f}"
        )
    record = {
        "name": "quality_ladder",
        "command": "KERAS_BACKEND=jax python recipes/quality_ladder.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "backend": keras.config.backend(),
        "seeds": args.seeds,
        "settings": {
            **{k: v for k, v in vars(recipe).items() if k != "json"},
            # How `copy_attention` copies.
            "copy_head": "pointer" if recipe.copy_attention else None,
        },
        "ladder": ladder,
        "run_total_seconds": time.perf_counter() - start,
        # Other work on the machine shows here (cores busy, 1-minute mean).
        "load_average": {
            "start": load_at_start,
            "end": os.getloadavg()[0],
        },
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
        plot_path = args.plot or os.path.splitext(args.json)[0] + ".png"
        plot(ladder, plot_path)
        record["plot"] = plot_path
    return record


if __name__ == "__main__":
    main()
