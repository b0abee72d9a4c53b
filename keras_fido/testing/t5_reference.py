"""A tiny random HuggingFace T5.1.1 run FiD-style: the numerical reference.

Only tests and benchmarks import this module; it needs `transformers` and
`torch` (the `test` extra).
"""

import numpy as np


def tiny_t5(
    vocab_size=128,
    d_model=32,
    d_kv=8,
    d_ff=64,
    num_layers=2,
    num_decoder_layers=3,
    num_heads=4,
    seed=0,
    **overrides,
):
    """A randomly initialized `T5ForConditionalGeneration` (T5.1.1)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.T5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=d_kv,
        d_ff=d_ff,
        num_layers=num_layers,
        num_decoder_layers=num_decoder_layers,
        num_heads=num_heads,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        dropout_rate=0.0,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        **overrides,
    )
    model = transformers.T5ForConditionalGeneration(config).eval()
    # Random norm scales and position biases (defaults are constant), so a
    # transposed or misplaced weight cannot go unnoticed.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "layer_norm" in name:
                parameter.copy_(1.0 + 0.2 * torch.randn_like(parameter))
            elif "relative_attention_bias" in name:
                parameter.normal_(0.0, 1.0)
        # Shrink the pad and end rows of the (in-memory tied) embedding so
        # that greedy decoding emits varied tokens instead of stopping.
        model.shared.weight[:2] *= 0.1
    return model


def untie_output_projection(model, seed=100):
    """Gives `model` its own random output projection (`lm_head`).

    transformers ties `lm_head` to the input embedding in memory, and with a
    tied random head greedy decoding soon repeats the token it was fed
    (each embedding is most similar to itself). A separate head, as T5.1.1
    checkpoints have, gives varied sequences, which make generation tests
    able to fail. The pad row is shrunk as in `tiny_t5`. Returns `model`.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(model.lm_head.weight.shape, generator=generator)
    weight[0] *= 0.1
    model.lm_head.weight = torch.nn.Parameter(weight)
    return model


def _fid_encode(model, encoder_token_ids, encoder_padding_mask):
    """Encodes each passage alone, then lays the outputs end to end.

    Returns `(BaseModelOutput [B, P*L, d], fused mask [B, P*L])`.
    """
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    ids = torch.as_tensor(np.asarray(encoder_token_ids), dtype=torch.long)
    mask = torch.as_tensor(np.asarray(encoder_padding_mask), dtype=torch.long)
    batch, passages, length = ids.shape
    with torch.no_grad():
        encoded = model.encoder(
            input_ids=ids.reshape(batch * passages, length),
            attention_mask=mask.reshape(batch * passages, length),
        ).last_hidden_state
    encoded = encoded.reshape(batch, passages * length, -1)
    return (
        BaseModelOutput(last_hidden_state=encoded),
        mask.reshape(batch, passages * length),
    )


def fid_forward(
    model,
    encoder_token_ids,
    encoder_padding_mask,
    decoder_token_ids,
    decoder_padding_mask,
):
    """Runs `model` as FiD does: passages encoded one by one, then fused.

    Returns numpy `(encoder_output [B, P*L, d], decoder_output [B, T, d],
    logits [B, T, V])`.
    """
    import torch

    encoded, fused_mask = _fid_encode(
        model, encoder_token_ids, encoder_padding_mask
    )
    with torch.no_grad():
        out = model(
            encoder_outputs=encoded,
            attention_mask=fused_mask,
            decoder_input_ids=torch.as_tensor(
                np.asarray(decoder_token_ids), dtype=torch.long
            ),
            decoder_attention_mask=torch.as_tensor(
                np.asarray(decoder_padding_mask), dtype=torch.long
            ),
            output_hidden_states=True,
        )
    return (
        encoded.last_hidden_state.numpy(),
        out.decoder_hidden_states[-1].numpy(),
        out.logits.numpy(),
    )


def fid_greedy_generate(
    model, encoder_token_ids, encoder_padding_mask, max_new_tokens
):
    """transformers' own greedy generation over FiD-fused passages.

    Returns int token ids `[B, 1 + generated]` (starting with the decoder
    start token), as `model.generate` gives them.
    """
    import torch

    encoded, fused_mask = _fid_encode(
        model, encoder_token_ids, encoder_padding_mask
    )
    with torch.no_grad():
        tokens = model.generate(
            encoder_outputs=encoded,
            attention_mask=fused_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            # transformers sizes its decoding cache by the encoder depth,
            # which breaks when the decoder is deeper; decode uncached.
            use_cache=model.config.num_decoder_layers
            == model.config.num_layers,
        )
    return tokens.numpy()


def random_fid_inputs(
    batch=2, passages=3, length=7, target=5, vocab=128, seed=0
):
    """Random token ids with ragged passage padding and one empty passage."""
    rng = np.random.default_rng(seed)
    encoder_ids = rng.integers(2, vocab, size=(batch, passages, length))
    encoder_mask = np.ones((batch, passages, length), "int32")
    encoder_mask[0, 1, length - 3 :] = 0  # a short passage
    encoder_mask[-1, -1, :] = 0  # a missing passage
    encoder_ids = (encoder_ids * encoder_mask).astype("int32")
    decoder_ids = rng.integers(2, vocab, size=(batch, target)).astype("int32")
    decoder_ids[:, 0] = 0
    decoder_mask = np.ones((batch, target), "int32")
    decoder_mask[0, target - 2 :] = 0
    decoder_ids = (decoder_ids * decoder_mask).astype("int32")
    return {
        "encoder_token_ids": encoder_ids,
        "encoder_padding_mask": encoder_mask,
        "decoder_token_ids": decoder_ids,
        "decoder_padding_mask": decoder_mask,
    }
