"""A copy head: answer tokens may be copied from the passages."""

import keras
from keras import ops

from keras_fido.utils.checks import check_keyword_arguments
from keras_fido.utils.checks import check_positive_int

# Keeps the log of a probability finite where both parts give it none.
_EPSILON = 1e-9
# The continuation gate starts at sigmoid(3) = 0.95.
_FOLLOW_BIAS = 3.0
# Width of the embedding of the piece a span would continue with.
_CANDIDATE_DIM = 16


@keras.saving.register_keras_serializable(package="keras_fido")
class CopyAttentionHead(keras.layers.Layer):
    """Mixes the vocabulary softmax with a copy of the attended tokens.

    A pointer-generator output (See et al., https://arxiv.org/abs/1704.04368)
    on the decoder's last cross-attending layer. Its cross-attention
    probabilities, mixed over query heads by learned weights, form a
    distribution over the encoder's tokens; scattered onto the vocabulary
    by the tokens' ids, it becomes a copy distribution. A learned gate of
    the decoder state mixes it with the usual softmax:

        p(y) = g * softmax(logits)[y] + (1 - g) * sum_{j: x_j = y} a_j

    A copied answer usually runs over several pieces, and attention that
    finds the first piece of a span has no reason to find the next one.
    So the copy distribution carries on: at step t, the previous step's
    copy distribution, kept only where the passage holds the piece just
    emitted and moved one token on, is the continuation of the span; a
    second gate of the decoder state mixes it with the fresh attention:

        m_t = shift(c_{t-1} * [x = y_{t-1}])
        c_t = f * m_t + (1 - f * sum(m_t)) * a_t

    (the mass that continues no span goes to the fresh attention). Both
    gates also read a small learned embedding of the piece the
    continuation would copy next, so a span can stop before its ".". The
    continuation needs the previous step's `c`, so training scans over
    the target positions, and cached decoding carries `c` from step to
    step (`decode`).

    The layer returns `log p`, which `fit()` treats as logits (the log of a
    distribution is its own log-softmax) and which every sampler reads as
    logits. The head lets a reader trained from scratch answer with a
    piece it has never produced as a target: the piece only has to be
    attended to. Without it, T5's untied output projection has never
    learned a row for such a piece.

    Args:
        num_heads: int. Query heads of the cross-attention that is read.
        vocabulary_size: int. Rows of the output distribution.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        logits: `[B, T, V]` vocabulary logits.
        hidden_states: `[B, T, d]` decoder states (the gate's input).
        attention_scores: `[B, num_key_value_heads, group, T, S]`
            cross-attention probabilities of one layer.
        encoder_token_ids: `[B, P, L]` (or `[B, S]`) ids of the attended
            tokens, `S = P*L`.
        decoder_token_ids: `[B, T]` the decoder's input ids: at step t,
            the piece emitted at step t - 1.

    Examples:
    ```python
    head = keras_fido.layers.CopyAttentionHead(num_heads=2,
                                               vocabulary_size=10)
    log_p = head(
        np.zeros((1, 1, 10), "float32"), np.ones((1, 1, 4), "float32"),
        np.full((1, 1, 2, 1, 3), 1 / 3, "float32"),
        np.array([[[4, 5, 5]]], "int32"), np.zeros((1, 1), "int32"))
    np.exp(log_p).sum(-1)  # [[1.]]
    ```
    """

    def __init__(self, num_heads, vocabulary_size, **kwargs):
        check_keyword_arguments(self, kwargs)
        super().__init__(**kwargs)
        check_positive_int("num_heads", num_heads)
        check_positive_int("vocabulary_size", vocabulary_size)
        self.num_heads = num_heads
        self.vocabulary_size = vocabulary_size
        self.gate = keras.layers.Dense(1, dtype=self.dtype_policy, name="gate")
        # Opens towards continuing: most copied answers are one span.
        self.follow_gate = keras.layers.Dense(
            1,
            bias_initializer=keras.initializers.Constant(_FOLLOW_BIAS),
            dtype=self.dtype_policy,
            name="follow_gate",
        )

    def build(self, logits_shape, hidden_states_shape, *args):
        self.gate.build(hidden_states_shape)
        self.follow_gate.build(hidden_states_shape)
        # Zeros: every head is read equally at the start.
        self.head_logits = self.add_weight(
            name="head_logits", shape=(self.num_heads,), initializer="zeros"
        )
        # What the continuation would copy next, as a small embedding of
        # its piece, moves both gates (stop before a span's "." rather
        # than copy it). Zeros: a piece never seen in training moves none.
        self.candidate_embedding = self.add_weight(
            name="candidate_embedding",
            shape=(self.vocabulary_size, _CANDIDATE_DIM),
            initializer="zeros",
        )
        self.candidate_kernel = self.add_weight(
            name="candidate_kernel",
            shape=(_CANDIDATE_DIM, 2),
            initializer="glorot_uniform",
        )
        self.built = True

    def call(
        self,
        logits,
        hidden_states,
        attention_scores,
        encoder_token_ids,
        decoder_token_ids,
    ):
        log_p, _ = self.decode(
            logits,
            hidden_states,
            attention_scores,
            encoder_token_ids,
            decoder_token_ids,
        )
        return log_p

    def decode(
        self,
        logits,
        hidden_states,
        attention_scores,
        encoder_token_ids,
        decoder_token_ids,
        copy_state=None,
    ):
        """`call` from a carried state: returns `(log_p, copy_state)`.

        `copy_state` `[B, S]` is the copy distribution of the step before
        `decoder_token_ids[:, 0]` (`None` at the start of a sequence); the
        returned one is that of the last step, for the next call.
        """
        batch, length = ops.shape(hidden_states)[0], ops.shape(hidden_states)[1]
        encoder_token_ids = ops.reshape(
            ops.cast(encoder_token_ids, "int32"),
            (ops.shape(encoder_token_ids)[0], -1),
        )
        # Beam search attends with a sample's r hypotheses as one query
        # sequence of r*T rows: [B, r*T, S] is [B*r, T, S] row for row.
        attention = ops.reshape(
            self.copy_attention(attention_scores), (batch, length, -1)
        )
        follow = ops.cast(self.follow_gate(hidden_states), "float32")
        if copy_state is None:
            copy_state = ops.zeros_like(attention[:, 0])
        copy_state = ops.convert_to_tensor(copy_state, "float32")
        copy, gate_shift, copy_state = self.continue_spans(
            copy_state,
            attention,
            ops.cast(decoder_token_ids, "int32"),
            follow,
            encoder_token_ids,
        )
        copy = ops.reshape(
            copy, (ops.shape(encoder_token_ids)[0], -1, ops.shape(copy)[-1])
        )
        copy = self.scatter_to_vocabulary(copy, encoder_token_ids)
        copy = ops.reshape(copy, ops.shape(logits))
        gate = ops.sigmoid(
            ops.cast(self.gate(hidden_states), "float32") + gate_shift
        )
        vocabulary = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        log_p = ops.log(gate * vocabulary + (1.0 - gate) * copy + _EPSILON)
        return log_p, copy_state

    def continue_spans(
        self, copy_state, attention, decoder_token_ids, follow, encoder_ids
    ):
        """The copy distributions `[B', T, S]` of T steps, in order.

        Each step mixes its fresh `attention` with the continuation of
        the step before's distribution; `follow` `[B', T, 1]` holds the
        mixing gate's logits from the decoder state. The first step
        continues `copy_state`. `B'` is a multiple of the passages' batch
        `B` (r hypotheses per sample in beam search).

        Returns `(copy [B', T, S], gate_shift [B', T, 1], copy_state)`:
        `gate_shift` is what the continuation's next piece adds to the
        vocabulary gate's logit.
        """
        batch = ops.shape(encoder_ids)[0]
        # [B, S, k]: the candidate embedding of every passage token.
        candidates = ops.take(self.candidate_embedding, encoder_ids, axis=0)
        kernel = self.candidate_kernel

        def per_sample(x):  # [B', S] -> [B, r, S]
            return ops.reshape(x, (batch, -1, ops.shape(x)[-1]))

        def step(previous, inputs):
            fresh, previous_ids, follow_logit = inputs
            # Keep the previous mass where the passage holds the piece just
            # emitted, [B, r, S] against r hypotheses per sample ...
            held = ops.equal(
                encoder_ids[:, None, :],
                ops.reshape(previous_ids, (batch, -1))[:, :, None],
            )
            held = ops.reshape(ops.cast(held, "float32"), ops.shape(previous))
            # ... and move it one token on.
            moved = ops.pad((previous * held)[:, :-1], [[0, 0], [1, 0]])
            total = ops.sum(moved, axis=-1, keepdims=True)
            # The piece the continuation would copy, [B', k] -> [B', 2].
            candidate = ops.reshape(
                ops.matmul(per_sample(moved), candidates),
                (-1, ops.shape(candidates)[-1]),
            )
            shifts = ops.matmul(candidate, kernel)
            weight = ops.sigmoid(follow_logit + shifts[:, :1])
            # The mass that continues no span goes to the fresh attention:
            # a distribution again, with no division (whose gradient
            # explodes where no span continues).
            copy = weight * moved + (1.0 - weight * total) * fresh
            return copy, ops.concatenate([copy, shifts[:, 1:]], axis=-1)

        inputs = (
            ops.transpose(attention, (1, 0, 2)),
            ops.transpose(decoder_token_ids, (1, 0)),
            ops.transpose(follow, (1, 0, 2)),
        )
        if attention.shape[1] == 1:  # One decoding step: no loop.
            copy_state, outputs = step(copy_state, tuple(x[0] for x in inputs))
            outputs = outputs[:, None]
        else:
            copy_state, outputs = ops.scan(step, copy_state, inputs)
            outputs = ops.transpose(outputs, (1, 0, 2))
        return outputs[..., :-1], outputs[..., -1:], copy_state

    def copy_attention(self, attention_scores):
        """`[B, kv, g, T, S]` probabilities -> `[B, T, S]`, heads mixed."""
        scores = ops.cast(attention_scores, "float32")
        batch, length = ops.shape(scores)[0], ops.shape(scores)[3]
        # [B, kv, g, T, S] -> [B, T, S, heads], heads in query-head order.
        scores = ops.transpose(scores, (0, 3, 4, 1, 2))
        scores = ops.reshape(scores, (batch, length, -1, self.num_heads))
        # A softmax over the heads, written out: with one head, keras
        # warns about a softmax over an axis of size 1.
        weights = ops.exp(ops.cast(self.head_logits, "float32"))
        weights = weights / ops.sum(weights)
        return ops.sum(scores * weights, axis=-1)

    def scatter_to_vocabulary(self, attention, encoder_token_ids):
        """`[B, T, S]` weights over tokens -> `[B, T, V]` over their ids.

        One segment sum over `B * V` segments: never a `[B, S, V]` one-hot,
        which at T5's 32k pieces and FiD's 10k tokens would not fit.
        """
        batch, length = ops.shape(attention)[0], ops.shape(attention)[1]
        vocabulary = self.vocabulary_size
        ids = ops.reshape(ops.cast(encoder_token_ids, "int32"), (batch, -1))
        rows = ops.arange(batch, dtype="int32")[:, None] * vocabulary
        segments = ops.reshape(ids + rows, (-1,))
        data = ops.reshape(ops.transpose(attention, (0, 2, 1)), (-1, length))
        summed = ops.segment_sum(
            data, segments, num_segments=batch * vocabulary
        )
        summed = ops.reshape(summed, (batch, vocabulary, length))
        return ops.transpose(summed, (0, 2, 1))

    def compute_output_shape(self, logits_shape, *args):
        return logits_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "vocabulary_size": self.vocabulary_size,
            }
        )
        return config
