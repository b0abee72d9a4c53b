"""Pretrain a FiD / FiDO model with T5's span corruption and save a preset.

    python recipes/pretrain.py --preset fido_base_xl --tokenizer spiece.model \
        --steps 524288 --batch-size 128 --output runs/pretrain

T5's recipe, as FiDO uses it: span corruption (15% of tokens in spans of
3 on average, `keras_fido.data.span_corruption_dataset`) over C4, the
`AdafactorAdam` optimizer (Adafactor without factoring or second-moment
decay schedule) on T5's inverse square root learning-rate schedule.

Data: tfds `c4/en` when it is prepared (`--tfds-data-dir`, else tfds'
default directory); if it is not, the local text files of `--text` (one
document per line, or per paragraph with `--paragraphs`), if given.
`--data text` uses the files even when C4 is prepared.

`--preset` is a named architecture (random weights; the vocabulary comes
from `--tokenizer FILE`, a SentencePiece model to which T5's 100 sentinels
are added if missing, or from `--train-tokenizer VOCAB`, trained on the
data) or a preset directory to continue from (its tokenizer included).

A checkpoint (weights, optimizer state, step) is written to
`<output>/backup` every `--save-every` steps. Run the same command again
after an interruption: training continues from the last checkpoint, and
the data is read in a new order (seeded by `--seed` and the step) rather
than from its start. `<output>/run_config.json` records the architecture
and vocabulary; a run that does not match them is refused. The model ends
in `<output>/preset` (`FiDOSeq2SeqLM.from_preset`, or `--preset` of
`recipes/finetune_qa.py`).

Distributed and multi-host training take the flags of
`recipes/finetune_qa.py` (`keras_fido.training.job`): `--distribution
data` or `model` (`--model-parallel N`), and on several hosts
`--coordinator host0:1234 --num-processes N --process-id I` (JAX) or
`TF_CONFIG` (TensorFlow). Each process reads its own part of the
documents, `--batch-size` stays the global batch, and process 0 writes
`<output>`, which every process must reach. See docs/distribution.md.
"""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import argparse
import itertools
import os
import sys

from keras_fido.utils.console import add_verbose_flag
from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

import keras

from keras_fido.data import train_sentencepiece
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.models.fido_presets import backbone_presets
from keras_fido.training.job import add_engine_flags
from keras_fido.training.job import check_job_settings
from keras_fido.training.job import start_engine
from keras_fido.training.pretraining_documents import c4_builder
from keras_fido.training.pretraining_documents import how_to_prepare_c4
from keras_fido.training.pretraining_documents import text_documents
from keras_fido.training.run_config import check_run_config
from keras_fido.training.run_config import run_config
from keras_fido.training.span_corruption_pretraining import (
    pretrain_span_corruption,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--preset",
        required=True,
        help="a named architecture or a preset directory to continue from",
    )
    p.add_argument("--output", required=True, help="run directory")
    p.add_argument(
        "--data",
        choices=("auto", "c4", "text"),
        default="auto",
        help="auto: C4 if prepared, else the --text files",
    )
    p.add_argument(
        "--text", nargs="+", default=None, metavar="FILE", help="text files"
    )
    p.add_argument(
        "--paragraphs",
        action="store_true",
        help="documents are blank-line separated paragraphs, not lines",
    )
    p.add_argument("--tfds-data-dir", default=None, help="tfds data_dir")
    p.add_argument(
        "--tokenizer",
        default=None,
        help="SentencePiece model file (named presets only)",
    )
    p.add_argument(
        "--train-tokenizer",
        type=int,
        default=None,
        metavar="VOCAB",
        help="train a SentencePiece vocabulary of this size on the data "
        "(named presets only)",
    )
    p.add_argument(
        "--tokenizer-documents",
        type=int,
        default=100000,
        help="documents read to train the vocabulary",
    )
    p.add_argument(
        "--extra-ids",
        type=int,
        default=100,
        help="sentinel tokens added to the vocabulary (T5: 100)",
    )
    p.add_argument("--steps", type=int, default=524288)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--input-length",
        type=int,
        default=512,
        help="encoder tokens per example (the targets' length follows)",
    )
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=10000,
        help="steps at the constant rate 1/sqrt(warmup) before the decay",
    )
    p.add_argument(
        "--save-every", type=int, default=1000, help="checkpoint period"
    )
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="STEPS",
        help="stop this run after about STEPS steps (rounded up to a "
        "checkpoint), to continue later, e.g. under a time limit",
    )
    p.add_argument("--seed", type=int, default=0)
    add_engine_flags(p)
    add_verbose_flag(p)
    args = p.parse_args(argv)
    for name in ("steps", "batch_size", "input_length", "save_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.stop_after is not None and args.stop_after < 1:
        p.error("--stop-after must be positive")
    return args


# --- Data ----------------------------------------------------------------


def document_source(args):
    """`("c4", builder)` or `("text", paths)`, by `--data`."""
    if args.text:
        missing = [path for path in args.text if not os.path.isfile(path)]
        if missing:
            raise SystemExit(f"--text: no such file: {missing[0]!r}")
    if args.data == "text":
        if not args.text:
            raise SystemExit("--data text needs --text FILE [FILE ...]")
        return "text", args.text
    builder = c4_builder(args.tfds_data_dir)
    if builder is not None:
        return "c4", builder
    if args.data == "auto" and args.text:
        print(how_to_prepare_c4(args.tfds_data_dir).split("\n")[0])
        print(f"Pretraining on the --text files instead: {args.text}")
        return "text", args.text
    raise SystemExit(how_to_prepare_c4(args.tfds_data_dir))


def tokenizer_text(source, args):
    """Documents to train a vocabulary on."""
    kind, where = source
    if kind == "c4":
        dataset = where.as_dataset(split="train").take(args.tokenizer_documents)
        for example in dataset.as_numpy_iterator():
            yield example["text"].decode("utf-8")
    else:
        yield from itertools.islice(
            text_documents(where, args.paragraphs), args.tokenizer_documents
        )


# --- Model ---------------------------------------------------------------


def load_tokenizer(args, source, chief=True):
    """The vocabulary of a named preset, with T5's sentinels (a trained
    one is kept in `--output` by the chief)."""
    saved = os.path.join(args.output, "vocabulary.spm")
    if args.tokenizer:
        from keras_fido.convert import tokenizer_from_spiece

        return tokenizer_from_spiece(args.tokenizer, extra_ids=args.extra_ids)
    if args.train_tokenizer:
        if os.path.exists(saved):
            # Resuming: the vocabulary this run started with.
            with open(saved, "rb") as file:
                return FiDOTokenizer(proto=file.read())
        proto = train_sentencepiece(
            tokenizer_text(source, args),
            vocab_size=args.train_tokenizer,
            extra_ids=args.extra_ids,
        )
        if chief:
            with open(saved, "wb") as file:
                file.write(proto)
        return FiDOTokenizer(proto=proto)
    raise SystemExit(
        "A named preset has no vocabulary: pass --tokenizer FILE or "
        "--train-tokenizer VOCAB_SIZE."
    )


def build_model(args, source, chief=True):
    if os.path.isdir(args.preset):
        try:
            model = FiDOSeq2SeqLM.from_preset(args.preset)
        except ValueError as error:
            raise SystemExit(f"--preset: {error}")
        if model.preprocessor is None:
            raise SystemExit(
                f"--preset {args.preset!r} has no tokenizer; save it with "
                "its preprocessor."
            )
        return model
    if args.preset not in backbone_presets:
        raise SystemExit(
            f"--preset {args.preset!r} is neither a directory nor one of "
            f"{sorted(backbone_presets)}"
        )
    tokenizer = load_tokenizer(args, source, chief)
    return FiDOSeq2SeqLM.from_preset(
        args.preset,
        preprocessor=FiDOSeq2SeqLMPreprocessor(tokenizer),
        vocabulary_size=tokenizer.vocabulary_size(),
    )


def main(argv=None):
    """Runs the recipe; returns a summary dict (steps, last loss, preset)."""
    args = parse_args(argv)
    group, context = start_engine(args)
    keras.utils.set_random_seed(args.seed)
    chief = group is None or group.chief
    os.makedirs(args.output, exist_ok=True)
    source = document_source(args)
    # Variables are created, and fit() runs, where the engine places them.
    with context as engine:
        # Before anything is built: a worker with other flags would hang.
        check_job_settings(args, group, engine)
        model = build_model(args, source, chief)
        return train(model, source, args, engine, chief)


def train(model, source, args, engine=None, chief=True):
    try:
        # Also checked by pretrain_span_corruption; here to exit cleanly.
        check_run_config(
            args.output, run_config(model, preprocessing=False), chief
        )
    except ValueError as e:
        raise SystemExit(str(e)) from None
    summary = pretrain_span_corruption(
        model,
        source,
        args.output,
        steps=args.steps,
        batch_size=args.batch_size,
        input_length=args.input_length,
        warmup_steps=args.warmup_steps,
        save_every=args.save_every,
        stop_after=args.stop_after,
        seed=args.seed,
        paragraphs=args.paragraphs,
        engine=engine,
        chief=chief,
    )
    if summary["preset"] is None and chief:
        print("Run the same command again to continue.")
    return summary


if __name__ == "__main__":
    main()
    sys.exit(0)
