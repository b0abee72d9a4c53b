"""`generate` called from several Python threads at once (as a web server
calls it) returns what sequential calls return, in flat memory over 200
calls (no softmax warning is raised by the decoder on one token either)."""

import gc
import threading
import warnings

import numpy as np
import pytest

from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.testing.fido_models import tiny_backbone

THREADS = 4
CALLS_PER_THREAD = 50  # 200 calls in all
WARM_UP_CALLS = 5
DISTINCT_BATCHES = 12
RSS_GROWTH_BOUND_MIB = 50  # generous: allocator noise is a few MiB
QUESTIONS = [
    "what is the capital of france",
    "who wrote the play",
    "where is the river",
    "when was the city built",
]


def example(i):
    return {
        "question": QUESTIONS[i % len(QUESTIONS)],
        "passages": [
            {"title": "Notes", "text": f"Passage {i} about a city and a river."}
        ],
    }


@pytest.fixture(scope="module")
def reader(sentencepiece_proto):
    tokenizer = FiDOTokenizer(proto=sentencepiece_proto)
    backbone = tiny_backbone(
        "fido", vocabulary_size=tokenizer.vocabulary_size()
    )
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer, num_passages=2, passage_length=24, decoder_sequence_length=6
    )
    return FiDOSeq2SeqLM(backbone, preprocessor)


def resident_mib():
    """This process' resident set size (VmRSS), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_threads_get_the_sequential_answers_in_flat_memory(reader):
    batches = [[example(i), example(i + 7)] for i in range(DISTINCT_BATCHES)]
    expected = [reader.generate(batch) for batch in batches]
    results = {}
    errors = []
    rss = []
    start = threading.Barrier(THREADS)
    warm = threading.Barrier(THREADS)

    def work(thread):
        try:
            start.wait()
            for c in range(CALLS_PER_THREAD):
                if c == WARM_UP_CALLS and warm.wait() == 0:
                    rss.append(resident_mib())
                index = thread * CALLS_PER_THREAD + c
                batch = index % DISTINCT_BATCHES
                results[index] = (batch, reader.generate(batches[batch]))
        except Exception as error:  # Reported below, with its thread.
            errors.append((thread, repr(error)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    gc.collect()
    rss.append(resident_mib())
    assert not errors
    assert len(results) == THREADS * CALLS_PER_THREAD
    wrong = [i for i, (b, answers) in results.items() if answers != expected[b]]
    assert wrong == []
    assert rss[1] - rss[0] < RSS_GROWTH_BOUND_MIB, rss


def test_decoder_on_one_token_warns_of_no_softmax(reader):
    ids = {
        "encoder_token_ids": np.ones((2, 2, 5), "int32"),
        "encoder_padding_mask": np.ones((2, 2, 5), "int32"),
        "decoder_token_ids": np.zeros((2, 4), "int32"),
        "decoder_padding_mask": np.array([[1, 0, 0, 0]] * 2, "int32"),
    }
    token_reader = FiDOSeq2SeqLM(reader.backbone)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*softmax.*")
        # One decoder token, no cache: self-attention over one key.
        token_reader.score_passages(ids)
        token_reader(
            {
                **ids,
                "decoder_token_ids": ids["decoder_token_ids"][:, :1],
                "decoder_padding_mask": ids["decoder_padding_mask"][:, :1],
            }
        )
