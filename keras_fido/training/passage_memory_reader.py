"""A trained FiD/FiDO reader in its passage-memory (LUMEN) form."""

from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_seq_2_seq_lm import FiDOSeq2SeqLM
from keras_fido.models.passage_memory import freeze_memory_encoder


def with_passage_memory(
    seq_2_seq_lm, live_layers, question_length=32, freeze=True
):
    """A copy of `seq_2_seq_lm` whose encoder has passage memory.

    The weights are the reader's own: passage memory changes what each
    encoder layer reads (the first layers each passage alone, the last
    `live_layers` the question block joined to the passage), not which
    weights there are, so every weight is carried over by its path. The
    preprocessor is rebuilt to pack a `question_length` question block
    before each passage, in a sequence `question_length` positions longer
    (the passage keeps its positions). Fine-tune the result (LUMEN's
    recipe: `freeze=True` freezes the memory encoder, so that the memory
    of a store built from it stays valid), then build the store.

    Args:
        seq_2_seq_lm: a `FiDOSeq2SeqLM` without passage memory (a vanilla
            FiD or FiDO reader, e.g. a converted T5 or the quickstart's).
        live_layers: int. Encoder layers run per query, in
            `[1, encoder_num_layers]`.
        question_length: int. Positions of the question block. Defaults
            to 32.
        freeze: bool. Freeze the memory encoder
            (`keras_fido.models.passage_memory.freeze_memory_encoder`).
            Defaults to True.

    Returns:
        A `FiDOSeq2SeqLM`, with a preprocessor when the reader has one.

    Examples:
    ```python
    reader = keras_hub.models.Seq2SeqLM.from_preset("runs/fido_reader")
    lumen = with_passage_memory(reader, live_layers=4)
    lumen.compile(optimizer="adam")
    lumen.fit(examples, epochs=1)
    build_memory_store(lumen, passages, "store/")
    ```
    """
    if not isinstance(seq_2_seq_lm, FiDOSeq2SeqLM):
        raise ValueError(
            "`seq_2_seq_lm` must be a `FiDOSeq2SeqLM`. Received: "
            f"{type(seq_2_seq_lm).__name__}"
        )
    backbone = seq_2_seq_lm.backbone
    if backbone.encoder_live_layers is not None:
        raise ValueError(
            "The reader has passage memory already: expected a backbone "
            "with `encoder_live_layers=None`. Received: "
            f"encoder_live_layers={backbone.encoder_live_layers}"
        )
    config = {
        **backbone.get_config(),
        "encoder_live_layers": live_layers,
        "encoder_question_length": question_length,
    }
    new = FiDOBackbone.from_config(config)
    weights = {w.path: w for w in backbone.weights}
    for variable in new.weights:
        variable.assign(weights[variable.path])
    if freeze:
        freeze_memory_encoder(new)
    preprocessor = seq_2_seq_lm.preprocessor
    if preprocessor is not None:
        tokenizer = preprocessor.tokenizer
        preprocessor = preprocessor.__class__.from_config(
            {
                **preprocessor.get_config(),
                "passage_length": preprocessor.passage_length + question_length,
                "question_length": question_length,
            }
        )
        # The config holds the tokenizer's settings, not its vocabulary.
        preprocessor.tokenizer = tokenizer
    return FiDOSeq2SeqLM(new, preprocessor)
