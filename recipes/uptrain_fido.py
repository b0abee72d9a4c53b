"""Uptrain FiDO from T5.1.1 checkpoints: convert, then continue pretraining.

    python recipes/uptrain_fido.py --encoder-checkpoint t5-v1_1-base \
        --decoder-checkpoint t5-v1_1-xl --cross-attention-interval 6 \
        --num-key-value-heads 1 --output runs/uptrain_base_xl

The FiDO paper pretrains from scratch. Multi-query uptraining (Ainslie et
al., 2023, https://arxiv.org/abs/2305.13245) starts from the public
multi-head checkpoints instead and continues pretraining for a small
fraction (5%) of the original steps. This recipe:

1. builds the FiDO model with `keras_fido.convert.uptrain_to_fido`: the
   decoder's K/V heads mean-pooled into `--num-key-value-heads` groups,
   cross-attention kept in every `--cross-attention-interval`-th decoder
   layer, the encoder and the decoder possibly from different checkpoints
   (cross-attention K/V re-initialised where the widths differ; see
   `<output>/converted/uptraining_report.json`);
2. measures the span-corruption loss of the source checkpoint(s) (as
   vanilla FiD) and of the converted model on held-out documents;
3. continues pretraining with T5's span corruption
   (`keras_fido.training.pretrain_span_corruption`, as
   `recipes/pretrain.py` does; resumable: run the same command again
   after an interruption), at a constant `--learning-rate`;
4. measures the loss again and writes `<output>/uptraining.json` (and
   `--json PATH`: the records under `docs/uptraining/` from which
   `tools/uptraining_docs.py` writes the table of `docs/conversion.md`).

Data: tfds `c4/en` when prepared (`--data c4`), local text files
(`--text`), or, by default when neither is there, the country passages
shipped with keras_fido (`keras_fido.data.corpus_lines()`, for smoke
tests). The last `--eval-documents` documents of text data (C4: its
validation split) are held out for the loss.
"""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import argparse
import json
import math
import os
import platform
import shlex
import sys

from keras_fido.utils.console import add_verbose_flag
from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

import keras
import numpy as np
import tensorflow as tf

from keras_fido.convert import from_t5_checkpoint
from keras_fido.convert import read_t5_checkpoint
from keras_fido.convert import tokenizer_from_spiece
from keras_fido.convert import uptrain_to_fido
from keras_fido.data import corpus_lines
from keras_fido.data import span_corruption_dataset
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.training.pretraining_documents import c4_builder
from keras_fido.training.pretraining_documents import how_to_prepare_c4
from keras_fido.training.pretraining_documents import text_documents
from keras_fido.training.span_corruption_pretraining import (
    pretrain_span_corruption,
)

# GQA uptrains for 5% of the original pretraining steps; T5.1.1 was
# pretrained for 1M steps.
UPTRAINING_FRACTION = 0.05
T5_PRETRAINING_STEPS = 1_000_000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--encoder-checkpoint",
        required=True,
        help="T5.1.1 checkpoint directory of the encoder (and of the "
        "decoder, unless --decoder-checkpoint)",
    )
    p.add_argument(
        "--decoder-checkpoint",
        default=None,
        help="T5.1.1 checkpoint directory of the decoder (e.g. larger)",
    )
    p.add_argument("--cross-attention-interval", type=int, default=1)
    p.add_argument(
        "--num-key-value-heads",
        type=int,
        default=None,
        help="decoder K/V heads after pooling (1: multi-query); default: "
        "the checkpoint's heads",
    )
    p.add_argument("--output", required=True, help="run directory")
    p.add_argument(
        "--data",
        choices=("auto", "c4", "text", "corpus"),
        default="auto",
        help="auto: C4 if prepared, else --text, else the embedded corpus",
    )
    p.add_argument("--text", nargs="+", default=None, metavar="FILE")
    p.add_argument(
        "--paragraphs",
        action="store_true",
        help="--text documents are blank-line separated paragraphs",
    )
    p.add_argument("--tfds-data-dir", default=None)
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="uptraining steps; default: 5%% of --original-steps",
    )
    p.add_argument(
        "--original-steps",
        type=int,
        default=T5_PRETRAINING_STEPS,
        help="pretraining steps of the source checkpoints",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--input-length", type=int, default=512)
    p.add_argument(
        "--learning-rate",
        type=float,
        default=1e-3,
        help="constant rate for 1/rate**2 steps, then T5's inverse square "
        "root decay (T5's schedule is at 1e-3 after its 1M steps)",
    )
    p.add_argument("--save-every", type=int, default=1000)
    p.add_argument("--stop-after", type=int, default=None, metavar="STEPS")
    p.add_argument("--eval-documents", type=int, default=256)
    p.add_argument("--eval-batches", type=int, default=8)
    p.add_argument(
        "--skip-source-loss",
        action="store_true",
        help="do not load the source checkpoints to measure their loss",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--json",
        default=None,
        help="also write the figures here (docs/uptraining/*.json feed "
        "tools/uptraining_docs.py)",
    )
    add_verbose_flag(p)
    args = p.parse_args(argv)
    if args.steps is None:
        args.steps = math.ceil(UPTRAINING_FRACTION * args.original_steps)
    for name in ("steps", "batch_size", "input_length", "eval_batches"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if not args.learning_rate > 0:
        p.error("--learning-rate must be positive")
    return args


# --- Data ----------------------------------------------------------------


def data_source(args):
    """`(kind, where)`: `("c4", builder)`, `("text", paths)` or
    `("corpus", None)`."""
    if args.data in ("auto", "c4"):
        builder = c4_builder(args.tfds_data_dir)
        if builder is not None:
            return "c4", builder
        if args.data == "c4":
            raise SystemExit(how_to_prepare_c4(args.tfds_data_dir))
    if args.data in ("auto", "text") and args.text:
        return "text", args.text
    if args.data == "text":
        raise SystemExit("--data text needs --text FILE [FILE ...]")
    return "corpus", None


def split_documents(args, source):
    """`(training source, held-out documents)`; text is written one
    document per line to `<output>/train_documents.txt`."""
    kind, where = source
    if kind == "c4":
        import tensorflow_datasets as tfds

        held_out = [
            example["text"].decode("utf-8")
            for example in tfds.as_numpy(
                where.as_dataset(split="validation").take(args.eval_documents)
            )
        ]
        return source, held_out
    if kind == "text":
        documents = list(text_documents(where, args.paragraphs))
    else:
        documents = corpus_lines()
    if len(documents) <= args.eval_documents:
        raise SystemExit(
            f"The data has {len(documents)} documents; hold out fewer than "
            f"that with --eval-documents (now {args.eval_documents})."
        )
    train, held_out = (
        documents[: -args.eval_documents],
        documents[-args.eval_documents :],
    )
    path = os.path.join(args.output, "train_documents.txt")
    with open(path, "w", encoding="utf-8") as file:
        file.writelines(" ".join(doc.split()) + "\n" for doc in train)
    return ("text", [path]), held_out


def held_out_batches(args, tokenizer, documents):
    """A fixed list of span-corruption batches `(x, y, sample_weight)`."""
    dataset = span_corruption_dataset(
        tf.data.Dataset.from_tensor_slices(documents),
        tokenizer,
        input_length=args.input_length,
        batch_size=args.batch_size,
        seed=args.seed + 1,
    )
    return list(dataset.take(args.eval_batches).as_numpy_iterator())


# --- Loss ----------------------------------------------------------------


def span_corruption_loss(model, batches):
    """Mean cross-entropy per target token (nats) of `model` on `batches`."""
    total, count = 0.0, 0.0
    for x, y, weight in batches:
        logits = np.asarray(model.predict_on_batch(x), "float64")
        logits -= logits.max(axis=-1, keepdims=True)
        log_z = np.log(np.exp(logits).sum(axis=-1))
        picked = np.take_along_axis(logits, y[..., None], axis=-1)[..., 0]
        weight = weight.astype("float64")
        total += float(((log_z - picked) * weight).sum())
        count += float(weight.sum())
    return total / count


def source_losses(args, batches):
    """The loss of each source checkpoint, run as vanilla FiD."""
    losses = {}
    for role, directory in (
        ("encoder", args.encoder_checkpoint),
        ("decoder", args.decoder_checkpoint),
    ):
        if directory is None or directory in losses:
            continue
        model = from_t5_checkpoint(directory, include_tokenizer=False)
        losses[directory] = span_corruption_loss(model, batches)
        print(f"Source {role} {directory}: loss {losses[directory]:.4f}")
        del model
    return losses


# --- Conversion ----------------------------------------------------------


def convert(args):
    """Builds the FiDO reader and saves it to `<output>/converted`."""
    encoder = read_t5_checkpoint(args.encoder_checkpoint)
    decoder = encoder
    if args.decoder_checkpoint:
        decoder = read_t5_checkpoint(args.decoder_checkpoint)
    vocabulary = encoder if encoder.spiece_model else decoder
    if vocabulary.spiece_model is None:
        raise SystemExit(
            "The checkpoints have no spiece.model (their vocabulary)."
        )
    backbone, report = uptrain_to_fido(
        encoder,
        decoder,
        cross_attention_interval=args.cross_attention_interval,
        num_key_value_heads=args.num_key_value_heads,
        seed=args.seed,
    )
    tokenizer = tokenizer_from_spiece(
        vocabulary.spiece_model,
        extra_ids=vocabulary.extra_ids,
        vocabulary_size=backbone.vocabulary_size,
    )
    reader = FiDOSeq2SeqLM(backbone, FiDOSeq2SeqLMPreprocessor(tokenizer))
    path = os.path.join(args.output, "converted")
    reader.save_to_preset(path)
    report_dict = {
        "reinitialized": report.reinitialized,
        "mean_pooled": report.mean_pooled,
        "dropped": report.dropped,
        "notes": report.notes,
    }
    with open(os.path.join(path, "uptraining_report.json"), "w") as file:
        json.dump(report_dict, file, indent=1)
    print(report.summary())
    return reader, path, report_dict


def main(argv=None):
    """Runs the recipe; returns the figures written to uptraining.json."""
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    source = data_source(args)
    training_source, held_out = split_documents(args, source)

    reader, converted, report = convert(args)
    batches = held_out_batches(args, reader.preprocessor.tokenizer, held_out)
    figures = {
        "command": shlex.join(
            ["python", "recipes/uptrain_fido.py"]
            + (sys.argv[1:] if argv is None else list(argv))
        ),
        "backend": keras.config.backend(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "encoder_checkpoint": args.encoder_checkpoint,
        "decoder_checkpoint": args.decoder_checkpoint,
        "cross_attention_interval": args.cross_attention_interval,
        "num_key_value_heads": reader.backbone.decoder_num_key_value_heads,
        "data": source[0],
        "steps": args.steps,
        "batch_size": args.batch_size,
        "input_length": args.input_length,
        "learning_rate": args.learning_rate,
        "reinitialized": sorted(report["reinitialized"]),
    }
    if not args.skip_source_loss:
        figures["source_loss"] = source_losses(args, batches)
    figures["converted_loss_before"] = span_corruption_loss(reader, batches)
    before = figures["converted_loss_before"]
    print(f"Converted FiDO before uptraining: loss {before:.4f}")
    del reader

    # The rate is 1/sqrt(max(step, warmup)): constant at --learning-rate
    # for 1/rate**2 steps (1M at 1e-3), then T5's decay.
    keras.utils.set_random_seed(args.seed)
    summary = pretrain_span_corruption(
        FiDOSeq2SeqLM.from_preset(converted),
        training_source,
        os.path.join(args.output, "pretrain"),
        steps=args.steps,
        batch_size=args.batch_size,
        input_length=args.input_length,
        warmup_steps=max(round(args.learning_rate**-2), 1),
        save_every=args.save_every,
        stop_after=args.stop_after,
        seed=args.seed,
    )
    if summary["preset"] is None:
        print("Uptraining stopped early; run the same command to continue.")
        return figures
    uptrained = FiDOSeq2SeqLM.from_preset(summary["preset"])
    figures["converted_loss_after"] = span_corruption_loss(uptrained, batches)
    figures["preset"] = summary["preset"]
    after = figures["converted_loss_after"]
    print(f"FiDO after {args.steps} uptraining steps: loss {after:.4f}")
    for path in (os.path.join(args.output, "uptraining.json"), args.json):
        if path:
            with open(path, "w") as file:
                json.dump(figures, file, indent=1)
    return figures


if __name__ == "__main__":
    main()
    sys.exit(0)
