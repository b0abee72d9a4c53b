"""What a training run trains, recorded so a resumed run can be checked."""

import hashlib
import json
import os

from keras_fido.utils.atomic_write import write_text_atomically

# Backbone config keys that do not change which checkpoints fit.
_NOT_ARCHITECTURE = ("name", "trainable", "dtype")
_PREPROCESSING = (
    "num_passages",
    "passage_length",
    "decoder_sequence_length",
    "question_prefix",
    "title_prefix",
    "context_prefix",
)


def run_config(model, preprocessing=True):
    """The architecture, preprocessing and vocabulary `model` trains.

    Args:
        model: a `FiDOSeq2SeqLM` with a preprocessor.
        preprocessing: bool. Also record the preprocessor's passage count,
            lengths and prefixes (a fine-tuning run), not only the
            architecture and vocabulary (a pretraining run, which builds its
            own inputs). Defaults to `True`.

    Returns:
        A flat, json-ready dict: `"backbone.<key>"` for each architecture
        setting, `"preprocessor.<key>"`, and `"tokenizer.sha256"` (the
        SentencePiece model's hash).
    """
    config = {
        f"backbone.{key}": value
        for key, value in model.backbone.get_config().items()
        if key not in _NOT_ARCHITECTURE
    }
    if preprocessing:
        for key in _PREPROCESSING:
            config[f"preprocessor.{key}"] = getattr(model.preprocessor, key)
    proto = model.preprocessor.tokenizer.proto
    config["tokenizer.sha256"] = hashlib.sha256(proto).hexdigest()
    return json.loads(json.dumps(config))  # tuples as lists, as stored


def check_run_config(output, config, chief=True):
    """Records `config` in `<output>/run_config.json`, or refuses a change.

    Checkpoint callbacks (`BackupAndRestore`) would otherwise load another
    architecture's checkpoints into this model and fail obscurely, or, for
    a different vocabulary of the same size, silently train mismatched
    weights.

    Args:
        output: str. The run directory.
        config: dict. From `run_config`.
        chief: bool. Whether this process records a new run's config. In
            a job of several processes only the chief writes; the others
            check against the file when it is there. Defaults to `True`.

    Raises:
        ValueError: when the directory holds a run whose config differs,
            naming every differing key with both values.
    """
    path = os.path.join(output, "run_config.json")
    if not os.path.exists(path):
        if chief:
            write_text_atomically(
                path, json.dumps(config, indent=1, sort_keys=True)
            )
        return
    with open(path) as f:
        stored = json.load(f)
    missing = object()
    differing = sorted(
        key
        for key in set(stored) | set(config)
        if stored.get(key, missing) != config.get(key, missing)
    )
    if differing:
        details = "; ".join(
            f"{key}: {stored.get(key)!r} there, {config.get(key)!r} now"
            for key in differing
        )
        raise ValueError(
            f"--output {output!r} holds a run of a different architecture, "
            f"preprocessing or vocabulary ({details}), whose checkpoints "
            "cannot be resumed by this one. Pick a new --output, or delete "
            "the directory to start over."
        )
