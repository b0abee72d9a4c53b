"""One reading experiment on the embedded country task, recorded as JSON.

    KERAS_BACKEND=jax python recipes/reader_experiments.py --name cloze1 \
        --cloze-copies 1 --epochs 3 --json docs/quality/cloze1.json

Trains the quickstart's FiDO (or FiD) reader with the quickstart's data,
vocabulary and schedule, changed by the flags below, and records test EM
overall and by kind of question, a copy-EM watched after every epoch (on
held-out capital, population, domain and demonym questions, whose answers
have to be copied out of the passages), the final loss and the time.
`tools/quality_docs.py` turns the records into `docs/quality.md`.

Cloze copies (`keras_fido.data.cloze_examples`) are made from training
passages of training countries only, so no held-out answer becomes a
target. `--copy-phase-epochs` first trains on one passage per example (a
cloze sentence's passage, or a question's first answer-bearing passage),
cheap steps meant to start the copying before the full input.
"""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import argparse
import json
import os
import sys
import time

from keras_fido.utils.console import add_verbose_flag
from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

import keras
import numpy as np
import tensorflow as tf

from keras_fido import quickstart
from keras_fido.data import build_country_qa
from keras_fido.data import cloze_examples
from keras_fido.data.counterfactual_examples import counterfactual_examples
from keras_fido.metrics import evaluate_predictions
from keras_fido.metrics.answer_recall import has_answer
from keras_fido.models import FiDOBackbone
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor

# How `copy_attention` copies, recorded with each run.
COPY_HEAD = "pointer"
COPY_FACTS = ("capital", "population", "tld", "demonym")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--model", choices=("fido", "fid"), default="fido")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--vocabulary-size", type=int, default=800)
    p.add_argument("--counterfactual-copies", type=int, default=1)
    p.add_argument(
        "--counterfactual-answers",
        choices=("donor", "scrambled"),
        default="donor",
    )
    p.add_argument("--cloze-copies", type=int, default=0)
    p.add_argument(
        "--cloze-answers", choices=("copied", "scrambled"), default="copied"
    )
    p.add_argument("--cloze-span-words", type=int, default=4)
    p.add_argument("--copy-phase-epochs", type=int, default=0)
    p.add_argument("--copy-phase-passage-length", type=int, default=48)
    p.add_argument(
        "--tie-embeddings",
        action="store_true",
        help="output projection = decoder input embedding (T5 v1.0)",
    )
    p.add_argument(
        "--decoder-width",
        type=int,
        default=None,
        help="decoder hidden width (MLP twice that); equal to the "
        "encoder's (96), the encoder and decoder share one embedding",
    )
    p.add_argument(
        "--output-init-scale",
        type=float,
        default=None,
        help="redraw the untied output projection with std "
        "scale/sqrt(width) instead of Keras' std 1.0",
    )
    p.add_argument(
        "--split-punctuation",
        action="store_true",
        help="punctuation as pieces of its own (train_sentencepiece's "
        "split_punctuation)",
    )
    p.add_argument(
        "--tokenizer-text",
        choices=("train", "corpus"),
        default="corpus",
        help="as the quickstart's --tokenizer-text",
    )
    p.add_argument(
        "--copy-attention",
        action="store_true",
        help="give the reader the copy head (FiDOBackbone's copy_attention)",
    )
    quickstart.add_copy_key_offsets_flag(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use only this many examples per split (smoke runs)",
    )
    p.add_argument("--json", default=None)
    add_verbose_flag(p)
    return p.parse_args(argv)


def reader_config(args, vocabulary_size):
    config = quickstart.reader_configs(
        vocabulary_size, args.copy_attention, args.copy_key_offsets
    )[args.model]
    if args.tie_embeddings:
        config["tie_embedding_weights"] = True
    if args.decoder_width:
        config["decoder_hidden_dim"] = args.decoder_width
        config["decoder_intermediate_dim"] = 2 * args.decoder_width
    return config


def new_reader(args, config):
    keras.utils.set_random_seed(args.seed)
    backbone = FiDOBackbone(**config)
    kernel = backbone.token_embedding.reverse_embeddings
    if args.output_init_scale is not None and kernel is not None:
        std = args.output_init_scale * kernel.shape[0] ** -0.5
        rng = np.random.default_rng(args.seed)
        kernel.assign(rng.normal(0.0, std, kernel.shape).astype("float32"))
    return FiDOSeq2SeqLM(backbone)


class CopyWatch(keras.callbacks.Callback):
    """Prints copy-EM on held-out copy questions after every epoch."""

    def __init__(self, preprocessor, examples, log):
        super().__init__()
        self.phase = "train"
        self.preprocessor, self.examples, self.log = (
            preprocessor,
            examples,
            log,
        )

    def on_epoch_end(self, epoch, logs=None):
        reader = FiDOSeq2SeqLM(self.model.backbone, self.preprocessor)
        predictions = reader.generate(self.examples)
        em = evaluate_predictions(
            predictions, [e["answers"] for e in self.examples]
        )["exact_match"]
        self.log.append(
            {
                "phase": self.phase,
                "epoch": epoch + 1,
                "copy_em": em,
                "loss": float(logs["loss"]),
            }
        )
        print(
            f"\n  copy-EM after epoch {epoch + 1}: {em:.1f} "
            f"(e.g. {predictions[:3]})",
            flush=True,
        )


def fit(reader, arrays, epochs, args, callbacks):
    steps = epochs * -(-len(arrays[1]) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        steps,
        alpha=0.05,
        warmup_target=args.learning_rate,
        warmup_steps=max(steps // 10, 1),
    )
    reader.compile(optimizer=keras.optimizers.Adam(schedule))
    dataset = (
        tf.data.Dataset.from_tensor_slices(arrays)
        .shuffle(len(arrays[1]), seed=args.seed)
        .batch(args.batch_size)
        .prefetch(2)
    )
    history = reader.fit(dataset, epochs=epochs, verbose=2, callbacks=callbacks)
    return history.history["loss"][-1]


def first_answer_passage(examples):
    """Each example cut to its first passage that holds a gold answer."""
    kept = []
    for example in examples:
        gold = [
            c
            for c in example["ctxs"]
            if has_answer(example["answers"], c["text"])
        ]
        if gold:
            kept.append(dict(example, ctxs=gold[:1]))
    return kept


def training_data(args, splits):
    train = splits["train"]
    countries = {e["country"] for e in train}
    swapped = counterfactual_examples(
        train,
        copies=args.counterfactual_copies,
        seed=args.seed,
        answers=args.counterfactual_answers,
    )

    def clozes(copies, seed, source_only):
        return cloze_examples(
            train,
            copies=copies,
            seed=seed,
            answers=args.cloze_answers,
            max_span_words=args.cloze_span_words,
            passage_filter=lambda ctx: ctx["title"] in countries,
            source_only=source_only,
        )

    full = train + swapped + clozes(args.cloze_copies, args.seed, False)
    phase = []
    if args.copy_phase_epochs:
        phase = clozes(2, args.seed + 1, True) + first_answer_passage(
            train + swapped
        )
    return full, phase


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    splits = build_country_qa(num_passages=4, seed=args.seed)
    if args.limit:
        splits = {k: v[: args.limit] for k, v in splits.items()}
    tokenizer = quickstart.train_tokenizer(args, splits["train"])

    def preprocessor(passages, length):
        return FiDOSeq2SeqLMPreprocessor(
            tokenizer,
            num_passages=passages,
            passage_length=length,
            decoder_sequence_length=16,
        )

    full, phase = training_data(args, splits)
    test = splits["test"]
    watched = [e for e in test if e["fact"] in COPY_FACTS][:48]
    reader = new_reader(args, reader_config(args, tokenizer.vocabulary_size()))
    log = []
    watch = CopyWatch(preprocessor(4, 64), watched, log)
    if phase:
        one = preprocessor(1, args.copy_phase_passage_length)
        watch.phase = "copy phase"
        fit(
            reader,
            quickstart.to_arrays(one, phase),
            args.copy_phase_epochs,
            args,
            [watch],
        )
    watch.phase = "train"
    train_start = time.perf_counter()
    loss = fit(
        reader,
        quickstart.to_arrays(preprocessor(4, 64), full),
        args.epochs,
        args,
        [watch],
    )
    train_seconds = time.perf_counter() - train_start
    reader.preprocessor = preprocessor(4, 64)
    predictions, _ = quickstart.evaluate(reader, test, 64)
    scores = evaluate_predictions(predictions, [e["answers"] for e in test])
    record = {
        "name": args.name,
        "command": "KERAS_BACKEND=jax python recipes/reader_experiments.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": {
            **{k: v for k, v in vars(args).items() if k != "json"},
            "copy_head": COPY_HEAD if args.copy_attention else None,
        },
        "training_examples": len(full),
        "copy_phase_examples": len(phase),
        "test_em": scores["exact_match"],
        "test_em_by_fact": quickstart.em_by_fact(test, predictions),
        "copy_em_by_epoch": log,
        "final_train_loss": float(loss),
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - start,
    }
    print(json.dumps(record, indent=1))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
    return record


if __name__ == "__main__":
    main()
