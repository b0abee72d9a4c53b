"""Tiny T5.1.1 checkpoint directories on disk, as transformers writes them.

Only tests and recipes' smoke runs import this module; writing a
checkpoint needs `transformers` and `torch` (the `test` extra). Nothing is
downloaded: the model is random (or briefly trained by the caller) and the
SentencePiece vocabulary is trained in memory on CPython's pydoc text.
"""

import functools
import os

SPIECE_PIECES = 200
EXTRA_IDS = 20
VOCAB_SIZE = 224  # pieces + extra ids, padded as T5 pads 32100 to 32128


def _pydoc_lines():
    from pydoc_data import topics

    text = "\n".join(topics.topics[key] for key in sorted(topics.topics))
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if len(line) >= 20]


@functools.lru_cache(maxsize=None)
def tiny_spiece_model(vocab_size=SPIECE_PIECES):
    """Bytes of a small T5-style SentencePiece model (`<pad>`=0, `</s>`=1,
    `<unk>`=2), trained in memory in well under a second."""
    from keras_fido.data.sentencepiece_trainer import train_sentencepiece

    return train_sentencepiece(
        _pydoc_lines(), vocab_size=vocab_size, character_coverage=0.995
    )


def write_t5_checkpoint(
    model,
    directory,
    spiece_model=None,
    extra_ids=EXTRA_IDS,
    safe_serialization=True,
):
    """Saves a transformers T5 model as a checkpoint directory.

    Writes what a downloaded T5.1.1 checkpoint holds: `config.json` and
    weights (`model.safetensors`, or `pytorch_model.bin` with
    `safe_serialization=False`) by `save_pretrained`, then `spiece.model`
    and a `tokenizer_config.json` recording `extra_ids`.

    Returns:
        The directory.
    """
    import json

    import torch

    directory = os.fspath(directory)
    if safe_serialization:
        model.save_pretrained(directory)
    else:
        os.makedirs(directory, exist_ok=True)
        model.config.save_pretrained(directory)
        torch.save(
            {k: v.contiguous() for k, v in model.state_dict().items()},
            os.path.join(directory, "pytorch_model.bin"),
        )
    spiece_model = spiece_model or tiny_spiece_model()
    with open(os.path.join(directory, "spiece.model"), "wb") as file:
        file.write(spiece_model)
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as file:
        json.dump(
            {"tokenizer_class": "T5Tokenizer", "extra_ids": extra_ids}, file
        )
    return directory


def tiny_t5_checkpoint(directory, seed=0, **overrides):
    """A random tiny T5.1.1 (own output projection) saved to `directory`.

    `overrides` are `keras_fido.testing.t5_reference.tiny_t5` arguments;
    the vocabulary defaults to `VOCAB_SIZE`, which holds the tiny
    SentencePiece model's pieces and `EXTRA_IDS` sentinels.

    Returns:
        `(transformers model, directory)`.
    """
    import torch

    from keras_fido.testing.t5_reference import tiny_t5
    from keras_fido.testing.t5_reference import untie_output_projection

    overrides.setdefault("vocab_size", VOCAB_SIZE)
    model = untie_output_projection(tiny_t5(seed=seed, **overrides))
    with torch.no_grad():
        # A weak end-of-sequence row, so greedy decoding runs long enough
        # for generation tests to be able to fail.
        model.lm_head.weight[1] *= 0.1
    return model, write_t5_checkpoint(model, directory)


def pretrain_t5(model, batches, steps, learning_rate=3e-3, seed=0):
    """Trains a transformers T5 briefly on span-corruption batches.

    A stand-in for a pretrained T5.1.1 checkpoint: a tiny model trained
    for a few hundred steps has a loss well below a random one, so
    conversion losses and their recovery by uptraining show.

    Args:
        model: a `transformers.T5ForConditionalGeneration`.
        batches: list of numpy `(x, y, sample_weight)` batches, as
            `keras_fido.data.span_corruption_dataset` yields them (one
            passage per example); cycled through.
        steps: int. Adam steps.
        learning_rate: float. Adam's rate.
        seed: int. Torch seed.

    Returns:
        The loss of the last step, a float.
    """
    import torch

    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only contend
    try:
        last = _train_steps(model, optimizer, batches, steps)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return last


def _train_steps(model, optimizer, batches, steps):
    import numpy as np
    import torch

    for step in range(steps):
        x, y, weight = batches[step % len(batches)]
        loss = model(
            input_ids=torch.tensor(x["encoder_token_ids"][:, 0]).long(),
            attention_mask=torch.tensor(x["encoder_padding_mask"][:, 0]).long(),
            decoder_input_ids=torch.tensor(x["decoder_token_ids"]).long(),
            decoder_attention_mask=torch.tensor(
                x["decoder_padding_mask"]
            ).long(),
            labels=torch.tensor(np.where(weight, y, -100)).long(),
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.detach())
