"""Exact match and F1 of a saved reader on a FiD json file.

    python recipes/evaluate_qa.py --preset runs/fido/preset \
        --data test.json --predictions runs/fido/test_predictions.jsonl
"""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import argparse
import itertools
import json
import os
import sys

from keras_fido.utils.console import add_verbose_flag
from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

from keras_fido.data import read_fid_examples
from keras_fido.metrics import evaluate_predictions
from keras_fido.models import FiDOSeq2SeqLM


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", required=True, help="preset directory")
    p.add_argument("--data", required=True, help="FiD json or jsonl")
    p.add_argument(
        "--predictions",
        default=None,
        help="write one json line per question here",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--limit", type=int, default=None)
    add_verbose_flag(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isfile(args.data):
        raise SystemExit(f"--data: no such file: {args.data!r}")
    try:
        reader = FiDOSeq2SeqLM.from_preset(args.preset)
    except ValueError as error:
        raise SystemExit(f"--preset: {error}")
    if reader.preprocessor is None:
        raise SystemExit(f"{args.preset!r} holds no tokenizer/preprocessor.")
    examples = read_fid_examples(
        args.data, num_passages=reader.preprocessor.num_passages
    )
    examples = itertools.islice(examples, args.limit)
    predictions, answers = [], []
    out = open(args.predictions, "w") if args.predictions else None
    try:
        while batch := list(itertools.islice(examples, args.batch_size)):
            for example, prediction in zip(batch, reader.generate(batch)):
                predictions.append(prediction)
                answers.append(example["answers"])
                if out:
                    out.write(
                        json.dumps(
                            {
                                "id": example.get("id"),
                                "question": example["question"],
                                "prediction": prediction,
                                "answers": example["answers"],
                            }
                        )
                        + "\n"
                    )
    finally:
        if out:
            out.close()
    scores = evaluate_predictions(predictions, answers)
    print(json.dumps(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
