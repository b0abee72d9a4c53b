"""Data for FiD readers: FiD json files, tfds QA sets, span corruption,
and the embedded country QA task.

The names below are imported on first use, so that `import keras_fido`
loads neither tensorflow-datasets nor the demo task's packages
(`countryinfo`, `bm25s`: `pip install "keras-fido[demo]"`).
"""

import importlib

from keras_fido.utils.extras import require

# Public name -> (module under keras_fido.data, optional packages it needs).
_DEMO = ("bm25s", "countryinfo")
_LAZY = {
    "BM25Retriever": ("bm25_retriever", ("bm25s",)),
    "FiDJson": ("fid_json_builder", ()),
    "FiDJsonConfig": ("fid_json_builder", ()),
    "build_country_qa": ("country_qa", _DEMO),
    "cloze_examples": ("cloze_examples", ()),
    "copyable_answers": ("copyable_answers", ()),
    "corpus_lines": ("country_qa", _DEMO),
    "example_text_lines": ("example_text_lines", ()),
    "country_qa_passages": ("country_qa", _DEMO),
    "country_qa_stats": ("country_qa", _DEMO),
    "load_fid_json": ("fid_json", ()),
    "load_tfds_qa": ("tfds_qa", ()),
    "read_fid_examples": ("fid_json", ()),
    "span_corruption": ("span_corruption_examples", ()),
    "span_corruption_dataset": ("span_corruption_examples", ()),
    "span_corruption_lengths": ("noise_spans", ()),
    "span_corruption_noise_mask": ("noise_spans", ()),
    "train_sentencepiece": ("sentencepiece_trainer", ()),
    "write_country_qa": ("country_qa", _DEMO),
    "write_fid_json": ("fid_json", ()),
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, packages = _LAZY[name]
    require(*packages)
    module = importlib.import_module(f"{__name__}.{module_name}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
