"""The main job: train FiDO and vanilla FiD readers on the embedded task.

`python -m keras_fido.quickstart` builds the country QA task shipped with
keras_fido (facts from the `countryinfo` package written as passages,
BM25-retrieved distractors, held-out countries for test), trains a
SentencePiece vocabulary on it, fine-tunes a small FiDO reader and a
vanilla FiD reader of the same encoder size the same way, and reports test
exact match, example answers with their top-scored passages, and
generation time per sample. No download; about ten minutes on two cores.
"""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import json
import os
import sys
import time

from keras_fido.quickstart_flags import add_copy_key_offsets_flag  # noqa: F401
from keras_fido.quickstart_flags import build_parser
from keras_fido.quickstart_flags import key_offsets_argument  # noqa: F401
from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

import keras
import numpy as np
import tensorflow as tf

from keras_fido.data import build_country_qa
from keras_fido.data import copyable_answers
from keras_fido.data import corpus_lines
from keras_fido.data import example_text_lines
from keras_fido.data import train_sentencepiece
from keras_fido.data.counterfactual_examples import counterfactual_examples
from keras_fido.metrics import evaluate_predictions
from keras_fido.metrics import exact_match
from keras_fido.models import FiDOBackbone
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.models import precision_at_1
from keras_fido.models import reader_passage_scores
from keras_fido.models import rerank_by_reader_scores

ENCODER = dict(
    encoder_num_layers=2,
    encoder_hidden_dim=96,
    encoder_intermediate_dim=192,
    encoder_num_heads=4,
)


def reader_configs(
    vocabulary_size, copy_attention=True, copy_key_offsets=(-1, 1)
):
    """FiDO (LSA + MQ + a wider decoder) and vanilla FiD, same encoder.

    Both get the copy head (`copy_attention`, its pointer keys reading the
    neighbours at `copy_key_offsets`) unless asked otherwise: the held-out
    answers are pieces neither reader has produced as a target.
    """
    common = dict(
        vocabulary_size=vocabulary_size,
        key_value_dim=32,
        dropout=0.0,
        copy_attention=copy_attention,
        copy_key_offsets=tuple(copy_key_offsets),
        **ENCODER,
    )
    fido = dict(
        common,
        decoder_num_layers=4,
        decoder_hidden_dim=144,
        decoder_intermediate_dim=288,
        decoder_num_heads=6,
        decoder_num_key_value_heads=1,
        cross_attention_interval=2,
    )
    fid = dict(
        common,
        decoder_num_layers=2,
        decoder_hidden_dim=96,
        decoder_intermediate_dim=192,
        decoder_num_heads=4,
        cross_attention_interval=1,
    )
    return {"fido": fido, "fid": fid}


def parse_args(argv=None):
    parser = build_parser(description=__doc__.split("\n")[0])
    return parser.parse_args(argv)


def to_arrays(preprocessor, examples):
    """Preprocesses a list of FiD examples once, for `fit` on arrays."""
    x, y, sample_weight = preprocessor(examples)
    convert = keras.ops.convert_to_numpy
    return (
        {k: convert(v) for k, v in x.items()},
        convert(y),
        convert(sample_weight),
    )


def train_reader(name, config, preprocessor, train, args, prepare=None):
    """Trains a reader of `config` on the packed `train` arrays with the
    quickstart's schedule (`args`: seed, epochs, batch size, learning
    rate); `prepare(backbone)`, if given, runs before compiling (e.g. to
    load weights and freeze some). Returns `(reader, seconds, loss)`."""
    keras.utils.set_random_seed(args.seed)
    # Train on the arrays preprocessed once; attach the preprocessor after.
    reader = FiDOSeq2SeqLM(FiDOBackbone(**config))
    if prepare is not None:
        prepare(reader.backbone)
    steps = args.epochs * -(-len(train[1]) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        steps,
        alpha=0.05,
        warmup_target=args.learning_rate,
        warmup_steps=max(steps // 10, 1),
    )
    reader.compile(optimizer=keras.optimizers.Adam(schedule), sampler="greedy")
    backbone = reader.backbone
    print(
        f"\n== {name}: {backbone.count_params():,} parameters, "
        "cross-attention in decoder layers "
        f"{backbone.cross_attention_layer_indices}, "
        f"{backbone.decoder_num_key_value_heads} K/V head(s)"
    )
    start = time.perf_counter()
    dataset = (
        tf.data.Dataset.from_tensor_slices(train)
        .shuffle(len(train[1]), seed=args.seed, reshuffle_each_iteration=True)
        .batch(args.batch_size)
        .prefetch(2)
    )
    history = reader.fit(dataset, epochs=args.epochs, verbose=1)
    elapsed = time.perf_counter() - start
    reader.preprocessor = preprocessor
    return reader, elapsed, history.history["loss"][-1]


def evaluate(reader, examples, batch_size):
    """Greedy answers for `examples`; returns predictions and seconds."""
    predictions = []
    # Warm-up compiles the decode loop for this batch shape.
    reader.generate(examples[:batch_size])
    start = time.perf_counter()
    for i in range(0, len(examples), batch_size):
        predictions.extend(reader.generate(examples[i : i + batch_size]))
    return predictions, time.perf_counter() - start


def em_by_fact(examples, predictions):
    """Exact match (%) per kind of question."""
    groups = {}
    for example, prediction in zip(examples, predictions):
        groups.setdefault(example["fact"], []).append(
            exact_match(prediction, example["answers"])
        )
    return {k: 100.0 * float(np.mean(v)) for k, v in groups.items()}


def show_examples(reader, examples, predictions, count=3):
    scores = reader.score_passages(examples[:count])
    for example, prediction, row in zip(examples, predictions, scores):
        print(f"  Q: {example['question']}")
        print(f"     predicted: {prediction!r}   gold: {example['answers']}")
        best = np.argsort(-row)[:2]
        for rank, index in enumerate(best, 1):
            ctx = example["ctxs"][index]
            print(
                f"     passage #{rank} (score {row[index]:.3f}): "
                f"{ctx['title']}: {ctx['text'][:90]}..."
            )


def reranking_report(reader, wide_test, num_passages, batch_size):
    """Reader scores as a reranker: BM25's top P against the reader's.

    `wide_test` holds 2P BM25 passages per question, best first, so its
    first P are exactly BM25's top P. Returns precision@1 of BM25 and of
    the reader (is a gold answer in the top passage?) and EM reading BM25's
    top P against EM reading the reader's top P of the 2P.
    """
    bm25_top = [dict(e, ctxs=e["ctxs"][:num_passages]) for e in wide_test]
    scores = reader_passage_scores(reader, wide_test, batch_size)
    reranked = rerank_by_reader_scores(
        reader, wide_test, num_passages, scores=scores
    )
    answers = [e["answers"] for e in wide_test]
    em = {}
    for name, examples in (("bm25", bm25_top), ("reranked", reranked)):
        predictions, _ = evaluate(reader, examples, batch_size)
        em[name] = evaluate_predictions(predictions, answers)["exact_match"]
    return {
        "retrieved_passages": 2 * num_passages,
        "precision_at_1_bm25": 100.0 * precision_at_1(wide_test),
        "precision_at_1_reader": 100.0 * precision_at_1(wide_test, scores),
        "test_em_bm25_top": em["bm25"],
        "test_em_reranked_top": em["reranked"],
    }


def answers_seen_in_training(train, test):
    """Per kind of question, test answers that were a training target.

    Shared answers (a region, a language) are expected; for the facts a
    reader has to copy (capital, domain, population, ...) the count should
    be zero, so that a right answer can only have been read.
    """
    targets = {e["target"] for e in train}
    counts = {}
    for example in test:
        fact = example.get("fact", "all")
        counts[fact] = counts.get(fact, 0) + (example["target"] in targets)
    return counts


def train_tokenizer(args, train):
    """The BPE tokenizer of `args` (`vocabulary_size`, `tokenizer_text`,
    `split_punctuation`), trained in memory."""
    if args.tokenizer_text == "train":
        # Only what the readers train on: every piece gets trained.
        lines = example_text_lines(train)
    else:
        lines = corpus_lines(include_questions=True)
    proto = train_sentencepiece(
        lines,
        vocab_size=args.vocabulary_size,
        model_type="bpe",
        split_punctuation=args.split_punctuation,
        # The training text alone may hold fewer pieces than asked for.
        hard_vocab_limit=args.tokenizer_text != "train",
    )
    return FiDOTokenizer(proto=proto)


def build_task(args):
    """The splits (test also with 2P passages), tokenizer, preprocessor."""
    t0 = time.perf_counter()
    splits = build_country_qa(num_passages=args.passages, seed=args.seed)
    wide = build_country_qa(num_passages=2 * args.passages, seed=args.seed)
    splits["test_wide"] = wide["test"]
    if args.limit:
        splits = {k: v[: args.limit] for k, v in splits.items()}
    print(
        "country QA: "
        + ", ".join(
            f"{k} {len(splits[k])} questions" for k in ("train", "test")
        )
        + f" ({time.perf_counter() - t0:.0f} s to build and retrieve)"
    )
    tokenizer = train_tokenizer(args, splits["train"])
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer,
        num_passages=args.passages,
        passage_length=args.passage_length,
        decoder_sequence_length=args.answer_length,
    )
    return splits, tokenizer, preprocessor


def training_examples(args, train):
    """The training questions and their answer-swapped copies."""
    swapped = counterfactual_examples(
        train,
        copies=args.counterfactual_copies,
        seed=args.seed,
        answers=args.counterfactual_answers,
    )
    print(
        f"training on {len(train)} questions and {len(swapped)} "
        "answer-swapped copies"
    )
    return train + swapped


def run_reader(name, config, preprocessor, train, splits, args):
    """Trains one reader and measures it; returns its record."""
    test = splits["test"]
    reader, train_s, loss = train_reader(
        name, config, preprocessor, train, args
    )
    predictions, generate_s = evaluate(reader, test, args.batch_size)
    scores = evaluate_predictions(predictions, [e["answers"] for e in test])
    by_fact = em_by_fact(test, predictions)
    ms = 1e3 * generate_s / len(test)
    print(
        f"{name}: test EM {scores['exact_match']:.1f}  "
        f"F1 {scores['f1']:.1f}  ({ms:.1f} ms/sample to generate)"
    )
    print(
        "  EM by fact: " + ", ".join(f"{k} {v:.0f}" for k, v in by_fact.items())
    )
    show_examples(reader, test, predictions)
    rerank = reranking_report(
        reader, splits["test_wide"], args.passages, args.batch_size
    )
    print(
        f"  passage ranking on {rerank['retrieved_passages']} BM25 "
        "passages: precision@1 BM25 "
        f"{rerank['precision_at_1_bm25']:.1f}, reader "
        f"{rerank['precision_at_1_reader']:.1f}; EM reading BM25's top "
        f"{args.passages} {rerank['test_em_bm25_top']:.1f}, the reader's "
        f"top {args.passages} {rerank['test_em_reranked_top']:.1f}"
    )
    if args.save_dir:
        reader.save_to_preset(os.path.join(args.save_dir, name))
    return {
        "test_em": scores["exact_match"],
        "test_f1": scores["f1"],
        "test_questions": scores["count"],
        "final_train_loss": float(loss),
        "train_seconds": train_s,
        "generate_ms_per_sample": ms,
        "test_em_by_fact": by_fact,
        "reranking": rerank,
        "parameters": int(reader.backbone.count_params()),
        "cross_attention_layers": reader.backbone.cross_attention_layer_indices,
    }


def task_report(args, splits, train_examples, tokenizer, preprocessor):
    """Prints what the test answers share with training and what packing
    cuts; returns the answers seen in training and the copyable ones."""
    seen = answers_seen_in_training(train_examples, splits["test"])
    print(
        "test answers that are also a training target, by fact: "
        + ", ".join(f"{k} {v}" for k, v in seen.items())
    )
    copyable = copyable_answers(
        splits["test"], tokenizer, preprocessor, group_key="fact"
    )
    print(
        "test answers whose pieces stand in one of their passages, by "
        "fact (%): "
        + ", ".join(f"{k} {100 * v:.0f}" for k, v in copyable.items())
    )
    for split, examples in (
        ("train", train_examples),
        ("test", splits["test"]),
    ):
        cut = preprocessor.truncation_report(examples)
        print(
            f"{split}: {cut['passages_truncated']} passages longer than "
            f"passage_length={args.passage_length} "
            f"({cut['passage_tokens_cut']} tokens cut), "
            f"{cut['passages_dropped']} passages beyond "
            f"num_passages={args.passages}, "
            f"{cut['target_tokens_cut']} answer tokens cut"
        )
    return seen, copyable


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    print(f"keras_fido quickstart on the {keras.config.backend()} backend")
    t0 = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    splits, tokenizer, preprocessor = build_task(args)
    train_examples = training_examples(args, splits["train"])
    seen, copyable = task_report(
        args, splits, train_examples, tokenizer, preprocessor
    )
    train = to_arrays(preprocessor, train_examples)
    configs = reader_configs(
        tokenizer.vocabulary_size(), args.copy_attention, args.copy_key_offsets
    )
    results = {}
    for name in [m for m in args.models.split(",") if m]:
        results[name] = run_reader(
            name, configs[name], preprocessor, train, splits, args
        )
    print("\nmodel  test EM  test F1  generate ms/sample  train s")
    for name, r in results.items():
        print(
            f"{name:5s}  {r['test_em']:7.1f}  {r['test_f1']:7.1f}  "
            f"{r['generate_ms_per_sample']:18.1f}  {r['train_seconds']:7.0f}"
        )
    total = time.perf_counter() - t0
    load_at_end = os.getloadavg()[0]
    print(f"total {total:.0f} s")
    for record in results.values():
        record["run_total_seconds"] = total
        # Other work on the machine shows here (cores busy, 1-minute mean).
        record["load_average"] = {"start": load_at_start, "end": load_at_end}
        record["test_answers_seen_in_training"] = seen
        record["test_answers_copyable"] = copyable
        record["settings"] = {
            k: v for k, v in vars(args).items() if k not in ("json",)
        }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
