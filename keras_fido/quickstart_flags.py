"""The quickstart's command line (`python -m keras_fido.quickstart`), and
the `--copy-key-offsets` flag the reading recipes share with it."""

import argparse

from keras_fido.utils.console import add_verbose_flag


def key_offsets_argument(text):
    """`"-1,1"` -> `(-1, 1)`; `""` or `"none"` -> `()`."""
    text = text.strip()
    if text in ("", "none"):
        return ()
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected comma-separated token offsets such as -1,1 (or none); "
            f"received {text!r}"
        ) from None


def add_copy_key_offsets_flag(parser):
    """`--copy-key-offsets`, shared by the quickstart and the recipes."""
    parser.add_argument(
        "--copy-key-offsets",
        type=key_offsets_argument,
        default=(-1, 1),
        help="neighbouring tokens each pointer key of the copy head also "
        "reads, as offsets (write --copy-key-offsets=-1,1; none for the "
        "token alone); FiDOBackbone's copy_key_offsets",
    )
    return parser


def build_parser(description):
    """The quickstart's parser, every flag in `--help` order."""
    p = argparse.ArgumentParser(
        prog="python -m keras_fido.quickstart",
        description=description,
    )
    _add_training_arguments(p)
    _add_reader_arguments(p)
    _add_counterfactual_arguments(p)
    _add_run_arguments(p)
    add_verbose_flag(p)
    return p


def _add_training_arguments(p):
    """The training budget and the shape of the packed inputs."""
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--passages", type=int, default=4)
    p.add_argument("--passage-length", type=int, default=64)
    p.add_argument("--answer-length", type=int, default=16)


def _add_reader_arguments(p):
    """The vocabulary and the copy head."""
    p.add_argument(
        "--vocabulary-size",
        type=int,
        default=6000,
        help="pieces of the SentencePiece model trained on the corpus",
    )
    p.add_argument(
        "--tokenizer-text",
        choices=("train", "corpus"),
        default="corpus",
        help="train the SentencePiece model on the training examples' "
        "text (every piece then has a trained embedding) or on the whole "
        "passage corpus with every question",
    )
    p.add_argument(
        "--split-punctuation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="punctuation as pieces of its own, so an answer has the same "
        "pieces in its passage as alone (train_sentencepiece's "
        "split_punctuation)",
    )
    p.add_argument(
        "--copy-attention",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give both readers the copy head (FiDOBackbone's copy_attention)",
    )
    add_copy_key_offsets_flag(p)


def _add_counterfactual_arguments(p):
    """The answer-swapped training copies."""
    p.add_argument(
        "--counterfactual-copies",
        type=int,
        default=1,
        help="answer-swapped copies of each training question "
        "(keras_fido.data.counterfactual_examples)",
    )
    p.add_argument(
        "--counterfactual-answers",
        choices=("donor", "scrambled"),
        default="donor",
        help="where the swapped answers come from",
    )


def _add_run_arguments(p):
    """Which readers, how many examples, the seed and the outputs."""
    p.add_argument("--models", default="fido,fid")
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use only this many examples per split (smoke runs)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument(
        "--save-dir",
        default=None,
        help="save each trained reader as a preset here",
    )
