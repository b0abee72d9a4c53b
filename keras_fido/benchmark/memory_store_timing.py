"""Times a passage memory store: its one-off build and a query's read.

For a variant with passage memory, the benchmark's reader (random
weights) gets a preprocessor (a SentencePiece model trained in memory on
the embedded task's text, its sequences packed as the variant's question
block and passage block) and a float16 store is built from the embedded
task's passages with `keras_fido.memory.build_memory_store`. A query
then reads `batch_size * passages` passages picked at random through
`MemoryStore.lookup` (memory dequantized to float32, token ids, masks):
the store's read path, from the page cache (the store was just written).
"""

import tempfile
import time

import numpy as np

from keras_fido.benchmark.timing import time_calls

# Passages in the timed store, from the embedded task's collection.
STORE_PASSAGES = 256


def time_memory_store(reader, batch_size, passages, passage_length, repeats):
    """`{"build_ms_per_passage", "read_ms_per_sample", "read_gb_per_s",
    "bytes_per_passage", "passages_stored", "dtype"}` of a float16 store
    for `reader` (a `FiDOSeq2SeqLM` whose backbone has passage memory)."""
    from keras_fido.data import corpus_lines
    from keras_fido.data import country_qa_passages
    from keras_fido.data import train_sentencepiece
    from keras_fido.memory import MemoryStore
    from keras_fido.memory import build_memory_store
    from keras_fido.models import FiDOSeq2SeqLM
    from keras_fido.models import FiDOSeq2SeqLMPreprocessor
    from keras_fido.models import FiDOTokenizer

    backbone = reader.backbone
    tokenizer = FiDOTokenizer(
        proto=train_sentencepiece(corpus_lines(), vocab_size=1000)
    )
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer,
        num_passages=passages,
        passage_length=passage_length,
        question_length=backbone.encoder_question_length,
    )
    with_text = FiDOSeq2SeqLM(backbone, preprocessor)
    collection = country_qa_passages()[:STORE_PASSAGES]
    with tempfile.TemporaryDirectory() as directory:
        path = f"{directory}/store"
        start = time.perf_counter()
        build_memory_store(with_text, collection, path, progress=False)
        build_s = time.perf_counter() - start
        store = MemoryStore(path)
        store.verify()
        ids = [p["id"] for p in collection]
        rng = np.random.default_rng(0)
        count = batch_size * passages

        def read():
            return store.lookup(list(rng.choice(ids, count)))

        timing = time_calls(read, repeats=repeats)
        per_passage = store.bytes_per_passage
    read_s = timing["median_s"]
    return {
        "dtype": "float16",
        "passages_stored": len(collection),
        "bytes_per_passage": per_passage,
        "build_ms_per_passage": 1e3 * build_s / len(collection),
        "read_ms_per_sample": 1e3 * read_s / batch_size,
        "read_gb_per_s": count * per_passage / read_s / 1e9,
    }
