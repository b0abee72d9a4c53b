"""Fine-tune a FiD / FiDO reader on FiD-format json and save a preset.

    python recipes/finetune_qa.py --train train.json --validation dev.json \
        --preset fido_tiny --train-tokenizer 8000 --output runs/fido

The training file is streamed (`keras_fido.data.load_fid_json`), so it may
be larger than memory. `--preset` is a named architecture (random weights,
then `--tokenizer` or `--train-tokenizer` is needed) or a preset directory
written by `save_to_preset` (weights and tokenizer included). Validation
exact match is computed by generating answers after each epoch, and the
best weights are kept. Run the same command again after an interruption:
training resumes from the last finished epoch (`<output>/backup`).
"""

import argparse
import itertools
import os
import sys

import keras

from keras_fido.data import load_fid_json
from keras_fido.data import read_fid_examples
from keras_fido.data import train_sentencepiece
from keras_fido.metrics import GenerationEvaluationCallback
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.models.fido_presets import backbone_presets


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", required=True, help="FiD json or jsonl")
    p.add_argument("--validation", required=True, help="FiD json or jsonl")
    p.add_argument(
        "--preset",
        required=True,
        help="a named architecture or a preset directory",
    )
    p.add_argument("--output", required=True, help="run directory")
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
        help="train a SentencePiece vocabulary "
        "of this size on the training text (named presets only)",
    )
    p.add_argument("--num-passages", type=int, default=10)
    p.add_argument("--passage-length", type=int, default=128)
    p.add_argument("--answer-length", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument(
        "--validation-limit",
        type=int,
        default=500,
        help="questions generated for validation EM per epoch",
    )
    p.add_argument(
        "--train-limit",
        type=int,
        default=None,
        help="use only the first N training questions",
    )
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def training_text(path, limit=20000):
    """Questions, titles, passages and answers, for a vocabulary."""
    for example in itertools.islice(read_fid_examples(path), limit):
        yield example["question"]
        yield from example.get("answers", [])
        for ctx in example.get("ctxs", []):
            yield f"{ctx.get('title', '')} {ctx['text']}"


def build_reader(args):
    if os.path.isdir(args.preset):
        reader = FiDOSeq2SeqLM.from_preset(args.preset)
        if reader.preprocessor is None:
            raise SystemExit(
                f"--preset {args.preset!r} has no tokenizer; save it with "
                "its preprocessor or pass a named architecture."
            )
        return reader
    if args.preset not in backbone_presets:
        raise SystemExit(
            f"--preset {args.preset!r} is neither a directory nor one of "
            f"{sorted(backbone_presets)}"
        )
    if args.tokenizer:
        with open(args.tokenizer, "rb") as f:
            proto = f.read()
    elif args.train_tokenizer:
        proto = train_sentencepiece(
            training_text(args.train),
            vocab_size=args.train_tokenizer,
            model_type="bpe",
        )
    else:
        raise SystemExit(
            "A named preset has no vocabulary: pass --tokenizer FILE or "
            "--train-tokenizer VOCAB_SIZE."
        )
    tokenizer = FiDOTokenizer(proto=proto)
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer,
        num_passages=args.num_passages,
        passage_length=args.passage_length,
        decoder_sequence_length=args.answer_length,
    )
    return FiDOSeq2SeqLM.from_preset(
        args.preset,
        preprocessor=preprocessor,
        vocabulary_size=tokenizer.vocabulary_size(),
    )


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    os.makedirs(args.output, exist_ok=True)
    reader = build_reader(args)
    num_passages = reader.preprocessor.num_passages
    train = (
        load_fid_json(args.train, num_passages=num_passages, validate=True)
        .take(args.train_limit or -1)
        .shuffle(4096, seed=args.seed)
        .ragged_batch(args.batch_size)
    )
    validation = list(
        itertools.islice(
            read_fid_examples(args.validation, num_passages=num_passages),
            args.validation_limit,
        )
    )
    reader.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate), sampler="greedy"
    )
    best = os.path.join(args.output, "best.weights.h5")
    callbacks = [
        GenerationEvaluationCallback(
            validation, batch_size=args.batch_size, checkpoint_path=best
        ),
        keras.callbacks.BackupAndRestore(os.path.join(args.output, "backup")),
    ]
    reader.fit(train, epochs=args.epochs, callbacks=callbacks, verbose=1)
    if os.path.exists(best):
        reader.load_weights(best)
    preset = os.path.join(args.output, "preset")
    reader.save_to_preset(preset)
    print(f"saved the best reader to {preset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
