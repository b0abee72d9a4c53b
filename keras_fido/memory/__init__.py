"""Passage memory stores (LUMEN): each passage's memory computed once by
a reader's memory encoder, stored on disk memory-mapped, and read at
query time by `generate` and by `tf.data` pipelines.

```python
from keras_fido.memory import MemoryReader, build_memory_store

store = build_memory_store(reader, passages, "memory/", dtype="float16")
MemoryReader(reader, store).generate(
    {"question": "what is the capital of france",
     "passage_ids": ["France/government"]}
)
```
"""

from keras_fido.memory.memory_dataset import lookup_passage_memory
from keras_fido.memory.memory_fingerprint import memory_fingerprint
from keras_fido.memory.memory_reader import MemoryReader
from keras_fido.memory.memory_store import MemoryStore
from keras_fido.memory.memory_store_builder import build_memory_store
from keras_fido.memory.store_size import bytes_per_passage
from keras_fido.memory.store_size import store_size_estimate
from keras_fido.memory.store_size import wikipedia_size_table

__all__ = [
    "MemoryReader",
    "MemoryStore",
    "build_memory_store",
    "bytes_per_passage",
    "lookup_passage_memory",
    "memory_fingerprint",
    "store_size_estimate",
    "wikipedia_size_table",
]
