"""Can a reader learn to copy? A synthetic task with only that solution.

    KERAS_BACKEND=jax python recipes/copy_diagnostic.py --json \
        docs/quality/diagnostics/copy_diagnostic.json

Each example is `--passages` passages of random pieces with one marker
piece in one of them; the target is the piece right after the marker
(`--span` pieces with a larger span). Test passages are drawn afresh, so
nothing can be memorised: a reader is right only if it copies. The same
tiny FiD reader is trained with and without the copy head
(`copy_attention`), same seed, same steps, and the recipe records
held-out accuracy every `--every` steps: how long the copying takes to
appear, if it does.
"""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import argparse
import json
import sys
import time

from keras_fido.utils.console import add_verbose_flag
from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

import keras
import numpy as np

from keras_fido import quickstart
from keras_fido.models import FiDOBackbone
from keras_fido.models import FiDOSeq2SeqLM

MARKER = 5
FIRST_PIECE = 20  # ids below are left to special tokens and the marker


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--every", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--vocabulary-size", type=int, default=800)
    p.add_argument("--passage-length", type=int, default=48)
    p.add_argument("--span", type=int, default=1)
    p.add_argument("--passages", type=int, default=1)
    p.add_argument(
        "--outputs",
        nargs="+",
        default=["t5_output", "copy_head"],
        choices=["t5_output", "copy_head"],
    )
    p.add_argument("--width", type=int, default=96)
    quickstart.add_copy_key_offsets_flag(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    add_verbose_flag(p)
    return p.parse_args(argv)


def marker_task(rng, count, args):
    """Token-id inputs and labels: copy the pieces after the marker."""
    length, span = args.passage_length, args.span
    ids = rng.integers(
        FIRST_PIECE, args.vocabulary_size, size=(count, args.passages, length)
    )
    starts = rng.integers(0, length - span, size=count)
    where = rng.integers(0, args.passages, size=count)
    labels = np.ones((count, span + 1), "int32")  # ends with </s> (id 1)
    for row, (start, passage) in enumerate(zip(starts, where)):
        ids[row, passage, start] = MARKER
        labels[row, :span] = ids[row, passage, start + 1 : start + 1 + span]
    decoder = np.concatenate(
        [np.zeros((count, 1), "int32"), labels[:, :-1]], axis=1
    )
    x = {
        "encoder_token_ids": ids.astype("int32"),
        "encoder_padding_mask": np.ones_like(ids, "int32"),
        "decoder_token_ids": decoder,
        "decoder_padding_mask": np.ones_like(decoder),
    }
    return x, labels


def reader(args, copy_attention):
    keras.utils.set_random_seed(args.seed)
    w = args.width
    backbone = FiDOBackbone(
        vocabulary_size=args.vocabulary_size,
        encoder_num_layers=2,
        encoder_hidden_dim=w,
        encoder_intermediate_dim=2 * w,
        encoder_num_heads=4,
        decoder_num_layers=2,
        decoder_hidden_dim=w,
        decoder_intermediate_dim=2 * w,
        decoder_num_heads=4,
        key_value_dim=32,
        dropout=0.0,
        copy_attention=copy_attention,
        copy_key_offsets=args.copy_key_offsets,
    )
    model = FiDOSeq2SeqLM(backbone)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    return model


def run(args, copy_attention):
    """Held-out exact-copy accuracy every `args.every` steps."""
    rng = np.random.default_rng(args.seed)
    test_x, test_y = marker_task(rng, 256, args)
    model = reader(args, copy_attention)
    curve, start = [], time.perf_counter()
    for step in range(args.every, args.steps + 1, args.every):
        x, y = marker_task(rng, args.every * args.batch_size, args)
        history = model.fit(
            x, y, batch_size=args.batch_size, epochs=1, verbose=0
        )
        logits = model.predict_on_batch(test_x)
        predicted = keras.ops.convert_to_numpy(logits).argmax(-1)
        span = args.span
        accuracy = float(
            np.mean(np.all(predicted[:, :span] == test_y[:, :span], axis=-1))
        )
        curve.append(
            {
                "step": step,
                "loss": float(history.history["loss"][-1]),
                "copy_accuracy": 100.0 * accuracy,
            }
        )
        print(
            f"copy_attention={copy_attention} step {step}: loss "
            f"{curve[-1]['loss']:.3f}, held-out copy accuracy "
            f"{curve[-1]['copy_accuracy']:.1f}%",
            flush=True,
        )
    return {"curve": curve, "seconds": time.perf_counter() - start}


def main(argv=None):
    args = parse_args(argv)
    record = {
        "name": "copy_diagnostic",
        "command": "KERAS_BACKEND=jax python recipes/copy_diagnostic.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "backend": keras.config.backend(),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "copy_head": "pointer",
        "runs": {
            name: run(args, copy_attention=name == "copy_head")
            for name in args.outputs
        },
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
    return record


if __name__ == "__main__":
    main()
