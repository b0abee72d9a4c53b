"""Fine-tune a FiD / FiDO reader on FiD-format json and save a preset.

    python recipes/finetune_qa.py --train train.json --validation dev.json \
        --preset fido_tiny --train-tokenizer 8000 --output runs/fido \
        --copy-attention

The training file is streamed (`keras_fido.data.load_fid_json`), so it may
be larger than memory. `--preset` is a named architecture (random weights,
then `--tokenizer` or `--train-tokenizer` is needed) or a preset directory
written by `save_to_preset` (weights and tokenizer included). Validation
exact match is computed by generating answers after each epoch, and the
best weights are kept. Run the same command again after an interruption:
training resumes from the last finished epoch (`<output>/backup`).
`<output>/run_config.json` records the architecture, preprocessing and
vocabulary of the run; a later run in the same directory that differs is
refused rather than resumed from mismatched checkpoints.

Distributed training uses Keras' own engines (`--distribution`):

    # JAX: data parallel over every device, or weights sharded 4 ways
    KERAS_BACKEND=jax python recipes/finetune_qa.py ... --distribution data
    KERAS_BACKEND=jax python recipes/finetune_qa.py ... \
        --distribution model --model-parallel 4
    # TensorFlow: MirroredStrategy over the GPUs, or a Cloud TPU
    KERAS_BACKEND=tensorflow python recipes/finetune_qa.py ... \
        --distribution data --tpu my-tpu

`--batch-size` is the global batch, split over the data-parallel replicas.
On several hosts, run the same command on each, adding who it is:

    # JAX: every process names process 0's address (or set Keras'
    # KERAS_DISTRIBUTION_JOB_ADDRESSES / _NUM_PROCESSES / _PROCESS_ID)
    python recipes/finetune_qa.py ... --distribution data \
        --coordinator host0:1234 --num-processes 2 --process-id I
    # TensorFlow: TF_CONFIG names the workers (MultiWorkerMirroredStrategy)
    TF_CONFIG=... python recipes/finetune_qa.py ... --distribution data

Each process reads its own part of `--train`, in an order set by
`--seed` and the epoch (a resumed epoch reads what an uninterrupted run
does); process 0 (the chief) writes the run config, the backups, the
best weights and the preset into `--output`, which every process must
reach (a shared filesystem). Processes started with different flags end
with one line naming the flag. See docs/distribution.md.
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

from keras_fido.data import load_fid_json
from keras_fido.data import read_fid_examples
from keras_fido.data import train_sentencepiece
from keras_fido.metrics import GenerationEvaluationCallback
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.models.fido_presets import backbone_presets
from keras_fido.training import fine_tuning_optimizer
from keras_fido.training import with_copy_head
from keras_fido.training.chief_backup_and_restore import ChiefBackupAndRestore
from keras_fido.training.gathered_weights import gathered_weights
from keras_fido.training.input_shards import shard_batch_size
from keras_fido.training.input_shards import shard_examples
from keras_fido.training.input_shards import shuffle_by_epoch
from keras_fido.training.job import add_engine_flags
from keras_fido.training.job import check_job_settings
from keras_fido.training.job import start_engine
from keras_fido.training.processes import written_by_chief
from keras_fido.training.run_config import check_run_config
from keras_fido.training.run_config import run_config


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
    # FiDO fine-tunes with batch 64 at a constant 1e-3 (AdafactorAdam); the
    # default batch here is scaled down for a small machine.
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
    p.add_argument(
        "--copy-attention",
        action="store_true",
        help="give the reader the copy head (FiDOBackbone's "
        "copy_attention), so answers can be copied from the passages; a "
        "preset directory without it keeps all its weights",
    )
    p.add_argument("--seed", type=int, default=0)
    add_engine_flags(p)
    add_verbose_flag(p)
    return p.parse_args(argv)


def training_text(path, limit=20000):
    """Questions, titles, passages and answers, for a vocabulary."""
    for example in itertools.islice(read_fid_examples(path), limit):
        yield example["question"]
        yield from example.get("answers", [])
        for ctx in example.get("ctxs", []):
            yield f"{ctx.get('title', '')} {ctx['text']}"


def build_reader(args):
    reader = load_reader(args)
    return with_copy_head(reader) if args.copy_attention else reader


def load_reader(args):
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
    group, context = start_engine(args)
    keras.utils.set_random_seed(args.seed)
    chief = group is None or group.chief
    os.makedirs(args.output, exist_ok=True)
    # Variables are created, and fit() runs, where the engine places them.
    with context as engine:
        # Before anything is built: a worker with other flags would hang.
        check_job_settings(args, group, engine)
        reader = build_reader(args)
        try:
            check_run_config(args.output, run_config(reader), chief)
        except ValueError as e:
            raise SystemExit(str(e)) from None
        train(reader, args, engine, chief)
    return 0


def train(reader, args, engine=None, chief=True):
    """Fits on `--train`, keeps the best validation EM, saves a preset."""
    num_passages = reader.preprocessor.num_passages
    examples = load_fid_json(
        args.train, num_passages=num_passages, validate=True
    ).take(args.train_limit or -1)
    try:
        batch_size = shard_batch_size(engine, args.batch_size)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    # This process's part, in an order set by (--seed, epoch), so that a
    # resumed epoch reads what an uninterrupted run would.
    shuffled, epoch_callback = shuffle_by_epoch(
        shard_examples(examples, engine), 4096, args.seed
    )
    # A distributed batch must split evenly over the replicas.
    dataset = shuffled.ragged_batch(
        batch_size, drop_remainder=args.distribution != "none"
    )
    validation = list(
        itertools.islice(
            read_fid_examples(args.validation, num_passages=num_passages),
            args.validation_limit,
        )
    )
    reader.compile(
        optimizer=fine_tuning_optimizer(args.learning_rate), sampler="greedy"
    )
    # Every process saves and loads (saving takes part in collectives);
    # the chief's files are kept, the others' are scratch copies.
    best = os.path.join(args.output, "best.weights.h5")
    with written_by_chief(best, chief) as own_best:
        callbacks = [
            epoch_callback,
            GenerationEvaluationCallback(
                validation, batch_size=args.batch_size, checkpoint_path=own_best
            ),
            ChiefBackupAndRestore(os.path.join(args.output, "backup"), chief),
        ]
        reader.fit(dataset, epochs=args.epochs, callbacks=callbacks, verbose=1)
        if os.path.exists(own_best):
            reader.load_weights(own_best)
    preset = os.path.join(args.output, "preset")
    with gathered_weights(reader), written_by_chief(preset, chief) as own:
        reader.save_to_preset(own)
    if chief:
        print(f"saved the best reader to {preset}")


if __name__ == "__main__":
    sys.exit(main())
