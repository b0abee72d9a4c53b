"""Saves a tiny FiDO reader under the running backend, with what it
computes, for `test_cross_backend_round_trip.py` to load under another.

Run as a script, with `KERAS_BACKEND` set:

    python round_trip_artefacts.py OUT_DIR VOCABULARY_PROTO SEED

It writes into `OUT_DIR`: `preset/` (`save_to_preset`), `reader.keras`
(`save`), one `.npy` per output of `compute_outputs` and `answers.json`
(`generate` on `EXAMPLES`). The weights come from keras' initializers
under `SEED`, which draw different numbers on each backend, so only
loading the saved weights can reproduce the outputs elsewhere.
"""

import json
import os
import sys

import numpy as np

EXAMPLES = [
    {
        "question": "what is the capital of france",
        "passages": [
            {"title": "France", "text": "The capital of France is Paris."},
            {"title": "Paris", "text": "Paris is a city on a river."},
        ],
    },
    {
        "question": "who wrote the play",
        "passages": [{"title": "Play", "text": "A play written long ago."}],
    },
]


def token_inputs(vocabulary_size):
    """Packed ids `[2, 3, 16]` with a short and a missing passage, and the
    start-token prompt `[2, 6]`."""
    from keras_fido.testing.t5_reference import random_fid_inputs

    x = random_fid_inputs(
        batch=2, passages=3, length=16, target=6, vocab=vocabulary_size, seed=1
    )
    prompt_mask = np.zeros_like(x["decoder_padding_mask"])
    prompt_mask[:, 0] = 1
    prompt = {
        "encoder_token_ids": x["encoder_token_ids"],
        "encoder_padding_mask": x["encoder_padding_mask"],
        "decoder_token_ids": np.zeros_like(x["decoder_token_ids"]),
        "decoder_padding_mask": prompt_mask,
    }
    return x, prompt


def compute_outputs(reader):
    """Encoder and decoder outputs, logits and greedy token ids of
    `reader` on `token_inputs`, as numpy arrays."""
    from keras import ops

    from keras_fido.models import FiDOSeq2SeqLM

    backbone = reader.backbone
    x, prompt = token_inputs(backbone.vocabulary_size)
    outputs = backbone(x)
    logits = backbone.token_logits(outputs["decoder_sequence_output"])
    generated = FiDOSeq2SeqLM(backbone).generate(prompt, stop_token_ids=None)
    arrays = {
        **outputs,
        "logits": logits,
        "generated_token_ids": generated["decoder_token_ids"],
    }
    return {name: ops.convert_to_numpy(a) for name, a in arrays.items()}


def produce(out_dir, proto, seed):
    import keras

    from keras_fido.models import FiDOBackbone
    from keras_fido.models import FiDOSeq2SeqLM
    from keras_fido.models import FiDOSeq2SeqLMPreprocessor
    from keras_fido.models import FiDOTokenizer

    keras.utils.set_random_seed(seed)
    tokenizer = FiDOTokenizer(proto=proto)
    backbone = FiDOBackbone.from_preset(
        "fido_tiny", vocabulary_size=tokenizer.vocabulary_size()
    )
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer, num_passages=3, passage_length=64, decoder_sequence_length=8
    )
    reader = FiDOSeq2SeqLM(backbone, preprocessor)
    os.makedirs(out_dir, exist_ok=True)
    reader.save_to_preset(os.path.join(out_dir, "preset"))
    reader.save(os.path.join(out_dir, "reader.keras"))
    for name, array in compute_outputs(reader).items():
        np.save(os.path.join(out_dir, f"{name}.npy"), array)
    with open(os.path.join(out_dir, "answers.json"), "w") as f:
        json.dump(reader.generate(EXAMPLES), f)


if __name__ == "__main__":
    out_dir, proto_path, seed = sys.argv[1:]
    with open(proto_path, "rb") as f:
        proto = f.read()
    produce(out_dir, proto, int(seed))
