"""Convert T5.1.1 checkpoints to keras_fido presets, and back.

    python tools/convert_t5_checkpoint.py T5_DIR OUT_PRESET
    python tools/convert_t5_checkpoint.py T5_DIR OUT_PRESET --to-fido \
        --decoder-checkpoint T5_XL_DIR --cross-attention-interval 6 \
        --num-key-value-heads 1
    python tools/convert_t5_checkpoint.py PRESET OUT_T5_DIR --to-transformers

The first form writes a vanilla-FiD preset equal to the checkpoint; the
second a FiDO preset to uptrain (`recipes/uptrain_fido.py`), with
`uptraining_report.json` listing pooled, dropped and re-initialised
weights; the third exports a vanilla-FiD preset as a transformers
checkpoint.
"""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import argparse
import dataclasses
import json
import os
import sys

from keras_fido.utils.console import add_verbose_flag
from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

from keras_fido.convert.from_t5_checkpoint import from_t5_checkpoint
from keras_fido.convert.t5_checkpoint import read_t5_checkpoint
from keras_fido.convert.t5_tokenizer import tokenizer_from_spiece
from keras_fido.convert.to_t5_checkpoint import to_t5_checkpoint
from keras_fido.convert.uptrain_to_fido import uptrain_to_fido
from keras_fido.models.fido_seq_2_seq_lm import FiDOSeq2SeqLM
from keras_fido.models.fido_seq_2_seq_lm_preprocessor import (
    FiDOSeq2SeqLMPreprocessor,
)

REPORT_FILE = "uptraining_report.json"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="convert_t5_checkpoint.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "source",
        help="T5 checkpoint directory (or, with "
        "--to-transformers, a keras_fido preset directory).",
    )
    parser.add_argument("output", help="Directory to write.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--to-fido",
        action="store_true",
        help="Build FiDO by uptraining conversion instead of vanilla FiD.",
    )
    mode.add_argument(
        "--to-transformers",
        action="store_true",
        help="Export a vanilla-FiD keras_fido preset as a T5 checkpoint.",
    )
    parser.add_argument(
        "--decoder-checkpoint",
        help="With --to-fido: T5 checkpoint of the decoder (e.g. a larger "
        "size). Defaults to SOURCE.",
    )
    parser.add_argument(
        "--cross-attention-interval",
        type=int,
        default=None,
        help="With --to-fido: keep cross-attention in decoder layers K, "
        "2K, ... Defaults to 1.",
    )
    parser.add_argument(
        "--num-key-value-heads",
        type=int,
        default=None,
        help="With --to-fido: decoder K/V heads after mean-pooling (1 is "
        "multi-query). Defaults to the checkpoint's heads.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-passages", type=int, default=40)
    parser.add_argument("--passage-length", type=int, default=256)
    parser.add_argument("--answer-length", type=int, default=32)
    parser.add_argument("--dtype", default=None, help="e.g. float32, bfloat16.")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    fido_only = (
        args.decoder_checkpoint,
        args.cross_attention_interval,
        args.num_key_value_heads,
    )
    if not args.to_fido and any(value is not None for value in fido_only):
        parser.error(
            "--decoder-checkpoint, --cross-attention-interval and "
            "--num-key-value-heads need --to-fido."
        )
    return args


def _preprocessor(tokenizer, args):
    return FiDOSeq2SeqLMPreprocessor(
        tokenizer,
        num_passages=args.num_passages,
        passage_length=args.passage_length,
        decoder_sequence_length=args.answer_length,
    )


def _fido_reader(args):
    encoder = read_t5_checkpoint(args.source)
    decoder = encoder
    if args.decoder_checkpoint:
        decoder = read_t5_checkpoint(args.decoder_checkpoint)
    vocabularies = {
        c.spiece_model for c in (encoder, decoder) if c.spiece_model
    }
    if len(vocabularies) > 1:
        raise ValueError(
            "The encoder and decoder checkpoints have different "
            "`spiece.model` vocabularies; FiDO needs one vocabulary."
        )
    if not vocabularies:
        raise ValueError(
            f"Neither {args.source!r} nor the decoder checkpoint has a "
            "`spiece.model` (the SentencePiece vocabulary)."
        )
    backbone, report = uptrain_to_fido(
        encoder,
        decoder,
        cross_attention_interval=args.cross_attention_interval or 1,
        num_key_value_heads=args.num_key_value_heads,
        seed=args.seed,
        dtype=args.dtype,
    )
    with_vocab = encoder if encoder.spiece_model else decoder
    tokenizer = tokenizer_from_spiece(
        with_vocab.spiece_model,
        extra_ids=with_vocab.extra_ids,
        vocabulary_size=backbone.vocabulary_size,
    )
    return FiDOSeq2SeqLM(backbone, _preprocessor(tokenizer, args)), report


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.to_transformers:
        to_t5_checkpoint(args.source, args.output)
        print(f"Wrote the T5 checkpoint {args.output}")
        return 0
    if args.to_fido:
        reader, report = _fido_reader(args)
    else:
        reader = from_t5_checkpoint(
            args.source,
            num_passages=args.num_passages,
            passage_length=args.passage_length,
            decoder_sequence_length=args.answer_length,
            dtype=args.dtype,
        )
        report = None
    reader.save_to_preset(args.output)
    backbone = reader.backbone
    print(
        f"Wrote the {'FiDO' if args.to_fido else 'FiD'} preset "
        f"{args.output}: {backbone.count_params():,} parameters, "
        f"cross-attention in decoder layers "
        f"{backbone.cross_attention_layer_indices}, "
        f"{backbone.decoder_num_key_value_heads} decoder K/V heads."
    )
    if report is not None:
        print(report.summary())
        with open(os.path.join(args.output, REPORT_FILE), "w") as file:
            json.dump(dataclasses.asdict(report), file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
