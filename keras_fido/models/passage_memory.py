"""Passage memory of a backbone with `encoder_live_layers` (LUMEN): what
its memory encoder computes, the encoder run from stored memory, the
weights the memory depends on, and freezing them for fine-tuning.

A passage's memory is the output of the encoder's first
`encoder_num_layers - encoder_live_layers` blocks over the passage's own
tokens (`title: t context: c`, the preprocessor's passage block). It
depends on the encoder's token embedding, its relative position bias and
those blocks, and on nothing of the question: it can be computed once per
passage (`keras_fido.memory` stores it) and fed to `encode_with_memory`.
"""

from keras import ops


def check_memory_backbone(backbone, purpose):
    """Raises unless `backbone` splits its encoder (has passage memory)."""
    if getattr(backbone, "encoder_live_layers", None) is None:
        raise ValueError(
            f"{purpose} needs a backbone with passage memory: expected "
            "`encoder_live_layers` set (e.g. a `lumen_*` preset). Received: "
            "encoder_live_layers=None (every encoder layer is live)."
        )


def check_question_block(backbone, preprocessor):
    """Raises unless the preprocessor packs the question block the
    backbone splits its sequences at (both `None` for FiD)."""
    if preprocessor is None:
        return
    expected = getattr(backbone, "encoder_question_length", None)
    got = getattr(preprocessor, "question_length", None)
    if expected != got:
        raise ValueError(
            "The preprocessor must pack the question block the backbone "
            "reads: expected preprocessor.question_length == "
            f"backbone.encoder_question_length. Received: "
            f"preprocessor.question_length={got!r}, "
            f"backbone.encoder_question_length={expected!r}"
        )


def encode_passage_memory(backbone, token_ids, padding_mask):
    """The memory of passages: `[..., N]` ids of passage blocks (no
    question) -> `[..., N, encoder_hidden_dim]` states."""
    check_memory_backbone(backbone, "Encoding passage memory")
    embeddings = backbone.encoder_token_embedding(token_ids)
    return backbone.encoder.encode_memory(embeddings, padding_mask)


def encode_with_memory(backbone, token_ids, padding_mask, passage_memory):
    """The encoder's output from stored passage memory.

    Args:
        backbone: a `FiDOBackbone` with `encoder_live_layers`.
        token_ids, padding_mask: `[B, P, L]`, as the preprocessor packs
            them (question block, then passage block); only the question
            block of slot 0 and the mask are read.
        passage_memory: `[B, P, L - encoder_question_length, d_enc]`.

    Returns:
        `[B, P*L, d_enc]`, what the encoder computes from the same tokens.
    """
    check_memory_backbone(backbone, "Encoding from passage memory")
    split = backbone.encoder_question_length
    expected = ops.shape(padding_mask)[2] - split
    got = ops.shape(passage_memory)
    if (
        len(got) != 4
        or (isinstance(expected, int) and got[2] != expected)
        or got[3] != backbone.encoder_hidden_dim
    ):
        raise ValueError(
            "`passage_memory` must be [batch, passages, "
            f"{expected} (passage positions), "
            f"{backbone.encoder_hidden_dim}]. Received shape {tuple(got)}."
        )
    question = backbone.encoder.encode_memory(
        backbone.encoder_token_embedding(token_ids[:, :1, :split]),
        padding_mask[:, :1, :split],
    )
    return backbone.encoder.encode_live(question, passage_memory, padding_mask)


def memory_variables(backbone):
    """The variables a passage's memory depends on, in a fixed order: the
    encoder's token embedding table, its position bias, the memory
    encoder's blocks."""
    check_memory_backbone(backbone, "Listing the memory encoder's weights")
    encoder = backbone.encoder
    variables = [backbone.encoder_token_embedding.embeddings]
    variables += list(encoder.relative_position_bias.weights)
    for layer in encoder.memory_layers:
        variables += list(layer.weights)
    return variables


def freeze_memory_encoder(backbone):
    """Makes every variable of `memory_variables` non-trainable (LUMEN's
    fine-tuning: the live encoder and the decoder train, memory computed
    before training stays valid).

    When the encoder and decoder share one token embedding (equal widths,
    as T5), the decoder's input embedding is frozen with it; the output
    projection (T5.1.1's untied one) keeps training. Returns the number
    of values frozen.
    """
    frozen = 0
    for variable in memory_variables(backbone):
        variable.trainable = False
        frozen += int(ops.size(variable))
    return frozen
