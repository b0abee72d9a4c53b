"""Give a trained reader a copy head, keeping every weight it has."""

from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_seq_2_seq_lm import FiDOSeq2SeqLM


def with_copy_head(seq_2_seq_lm):
    """A copy of `seq_2_seq_lm` whose backbone has `copy_attention=True`.

    Every weight of the reader is carried over by its path; only the copy
    head's own weights are new (its gate and its per-head mixing weights,
    which start by reading every head equally). Use it to fine-tune a
    converted T5 checkpoint, or any preset saved without the head, as a
    reader that can copy its answers out of the passages.

    Args:
        seq_2_seq_lm: a `FiDOSeq2SeqLM`. A reader that already has the
            head is returned as it is.

    Returns:
        A `FiDOSeq2SeqLM` with the same preprocessor.

    Examples:
    ```python
    reader = keras_hub.models.Seq2SeqLM.from_preset("runs/t5_reader")
    reader = with_copy_head(reader)
    reader.fit(examples, epochs=2)
    ```
    """
    if not isinstance(seq_2_seq_lm, FiDOSeq2SeqLM):
        raise ValueError(
            "`seq_2_seq_lm` must be a `FiDOSeq2SeqLM`. Received: "
            f"{type(seq_2_seq_lm).__name__}"
        )
    backbone = seq_2_seq_lm.backbone
    if backbone.copy_attention:
        return seq_2_seq_lm
    config = {**backbone.get_config(), "copy_attention": True}
    new = FiDOBackbone.from_config(config)
    weights = {w.path: w for w in backbone.weights}
    for variable in new.weights:
        if variable.path in weights:
            variable.assign(weights[variable.path])
        elif not variable.path.startswith("copy_head/"):
            raise ValueError(
                f"The new backbone has a weight {variable.path!r} that the "
                "reader does not: it cannot be carried over."
            )
    return FiDOSeq2SeqLM(new, seq_2_seq_lm.preprocessor)
