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


def check_key_offsets(key_offsets):
    """Distinct non-zero ints, as a tuple; anything else is refused."""
    offsets = tuple(key_offsets)
    if any(
        isinstance(o, bool) or not isinstance(o, int) or o == 0 for o in offsets
    ) or len(set(offsets)) != len(offsets):
        raise ValueError(
            "`key_offsets` must be distinct non-zero ints (token offsets "
            f"such as -1 and 1). Received: key_offsets={key_offsets!r}"
        )
    return offsets


def _neighbour_key_name(offset):
    if offset in (-1, 1):
        return "previous_key" if offset < 0 else "next_key"
    return f"key_{'before' if offset < 0 else 'after'}_{abs(offset)}"


def _shifted(states, offset):
    """`[B, S, d]` states moved so position i holds i + offset's."""
    if offset < 0:
        return ops.pad(states[:, :offset], [[0, 0], [-offset, 0], [0, 0]])
    return ops.pad(states[:, offset:], [[0, 0], [0, offset], [0, 0]])


@keras.saving.register_keras_serializable(package="keras_fido")
class CopyAttentionHead(keras.layers.Layer):
    """Mixes the vocabulary softmax with a copy of the passages' tokens.

    A pointer-generator output (See et al., https://arxiv.org/abs/1704.04368)
    with its own attention: a query from the decoder state against a key
    per encoder token gives a distribution over the passages' tokens;
    scattered onto the vocabulary by the tokens' ids, it becomes a copy
    distribution. A learned gate of the decoder state mixes it with the
    usual softmax:

        p(y) = g * softmax(logits)[y] + (1 - g) * sum_{j: x_j = y} c_j

    The pointer is trained by the copy loss alone: the decoder's
    cross-attention stays free to gather what the answer depends on (for
    instance the country a question is about), which is not where the
    answer is copied from.

    A copied answer usually runs over several pieces, and attention that
    finds the first piece of a span has no reason to find the next one.
    So the copy distribution carries on: at step t, the previous step's
    copy distribution, kept only where the passage holds the piece just
    emitted and moved one token on, is the continuation of the span; a
    second gate of the decoder state mixes it with the fresh attention
    `a_t`:

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
    pointed at. Without it, T5's untied output projection has never
    learned a row for such a piece.

    Args:
        vocabulary_size: int. Rows of the output distribution.
        encoder_hidden_dim: int. Width of the encoder states.
        key_dim: int. Width of the pointer's queries and keys.
        key_offsets: tuple of ints. The neighbouring tokens (by offset)
            whose states each token's key also reads; `()` for the token
            alone.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        logits: `[B, T, V]` vocabulary logits.
        hidden_states: `[B, T, d]` decoder states.
        encoder_keys: `[B, S, key_dim]` the pointer's keys of the encoder
            states, `S = P*L` (`encoder_keys(encoder_sequence_output)`).
        encoder_padding_mask: `[B, P, L]` (or `[B, S]`), true on tokens.
        encoder_token_ids: `[B, P, L]` (or `[B, S]`) ids of the tokens.
        decoder_token_ids: `[B, T]` the decoder's input ids: at step t,
            the piece emitted at step t - 1.

    Examples:
    ```python
    head = keras_fido.layers.CopyAttentionHead(
        vocabulary_size=10, encoder_hidden_dim=8, key_dim=4)
    head.build((1, 1, 10), (1, 1, 4))
    states = np.ones((1, 3, 8), "float32")
    log_p = head(
        np.zeros((1, 1, 10), "float32"), np.ones((1, 1, 4), "float32"),
        head.encoder_keys(states), np.ones((1, 3), "bool"),
        np.array([[4, 5, 5]], "int32"), np.zeros((1, 1), "int32"))
    np.exp(log_p).sum(-1)  # [[1.]]
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        encoder_hidden_dim,
        key_dim=64,
        key_offsets=(-1, 1),
        **kwargs,
    ):
        check_keyword_arguments(self, kwargs)
        super().__init__(**kwargs)
        check_positive_int("vocabulary_size", vocabulary_size)
        check_positive_int("encoder_hidden_dim", encoder_hidden_dim)
        check_positive_int("key_dim", key_dim)
        self.vocabulary_size = vocabulary_size
        self.encoder_hidden_dim = encoder_hidden_dim
        self.key_dim = key_dim
        self.key_offsets = check_key_offsets(key_offsets)
        dense = dict(use_bias=False, dtype=self.dtype_policy)
        self.query = keras.layers.Dense(key_dim, name="query", **dense)
        self.key = keras.layers.Dense(key_dim, name="key", **dense)
        self.neighbour_keys = [
            keras.layers.Dense(key_dim, name=_neighbour_key_name(o), **dense)
            for o in self.key_offsets
        ]
        self.gate = keras.layers.Dense(1, dtype=self.dtype_policy, name="gate")
        # Opens towards continuing: most copied answers are one span.
        self.follow_gate = keras.layers.Dense(
            1,
            bias_initializer=keras.initializers.Constant(_FOLLOW_BIAS),
            dtype=self.dtype_policy,
            name="follow_gate",
        )

    def build(self, logits_shape, hidden_states_shape, *args):
        self.query.build(hidden_states_shape)
        self.gate.build(hidden_states_shape)
        self.follow_gate.build(hidden_states_shape)
        self.key.build((None, None, self.encoder_hidden_dim))
        for neighbour_key in self.neighbour_keys:
            neighbour_key.build((None, None, self.encoder_hidden_dim))
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

    def encoder_keys(self, encoder_sequence_output):
        """`[B, S, d_enc]` encoder states -> `[B, S, key_dim]` keys.

        A token's key also reads the states of its neighbours at
        `key_offsets` (zeros past either end): where an answer starts is
        told by the words around it ("... is" before a capital, "is the
        capital" after one), which the state of its first piece need not
        hold. The passages are flattened, so a passage's first token sees
        the last of the passage before; that token is the question prefix,
        never an answer.
        """
        states = encoder_sequence_output
        keys = self.key(states)
        for offset, neighbour_key in zip(self.key_offsets, self.neighbour_keys):
            keys = keys + neighbour_key(_shifted(states, offset))
        return ops.cast(keys, "float32")

    def pointer_attention(self, hidden_states, encoder_keys, padding_mask):
        """`[B', T, d]` states -> `[B', T, S]` attention over the tokens.

        `B'` may be `r` hypotheses per sample (beam search): each sample's
        rows attend to its one copy of the keys as one query sequence.
        """
        batch, length = ops.shape(hidden_states)[0], ops.shape(hidden_states)[1]
        samples = ops.shape(encoder_keys)[0]
        query = ops.cast(self.query(hidden_states), "float32")
        query = ops.reshape(query, (samples, -1, self.key_dim))
        scores = ops.matmul(query, ops.transpose(encoder_keys, (0, 2, 1)))
        scores = scores * (self.key_dim**-0.5)
        mask = ops.reshape(ops.cast(padding_mask, "bool"), (samples, 1, -1))
        scores = ops.where(mask, scores, -1e9)
        attention = ops.softmax(scores, axis=-1)
        return ops.reshape(attention, (batch, length, -1))

    def call(
        self,
        logits,
        hidden_states,
        encoder_keys,
        encoder_padding_mask,
        encoder_token_ids,
        decoder_token_ids,
    ):
        log_p, _ = self.decode(
            logits,
            hidden_states,
            encoder_keys,
            encoder_padding_mask,
            encoder_token_ids,
            decoder_token_ids,
        )
        return log_p

    def decode(
        self,
        logits,
        hidden_states,
        encoder_keys,
        encoder_padding_mask,
        encoder_token_ids,
        decoder_token_ids,
        copy_state=None,
    ):
        """`call` from a carried state: returns `(log_p, copy_state)`.

        `copy_state` `[B, S]` is the copy distribution of the step before
        `decoder_token_ids[:, 0]` (`None` at the start of a sequence); the
        returned one is that of the last step, for the next call.
        """
        encoder_token_ids = ops.reshape(
            ops.cast(encoder_token_ids, "int32"),
            (ops.shape(encoder_token_ids)[0], -1),
        )
        attention = self.pointer_attention(
            hidden_states, encoder_keys, encoder_padding_mask
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

        def step(carry, inputs):
            previous, _ = carry
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
            # The outputs are the carry (TensorFlow's scan wants them alike).
            return (copy, shifts[:, 1:]), (copy, shifts[:, 1:])

        inputs = (
            ops.transpose(attention, (1, 0, 2)),
            ops.transpose(decoder_token_ids, (1, 0)),
            ops.transpose(follow, (1, 0, 2)),
        )
        carry = (copy_state, ops.zeros_like(copy_state[:, :1]))
        if attention.shape[1] == 1:  # One decoding step: no loop.
            _, (copy, gate_shift) = step(carry, tuple(x[0] for x in inputs))
            return copy[:, None], gate_shift[:, None], copy
        (copy_state, _), (copy, gate_shift) = ops.scan(step, carry, inputs)
        return (
            ops.transpose(copy, (1, 0, 2)),
            ops.transpose(gate_shift, (1, 0, 2)),
            copy_state,
        )

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
                "vocabulary_size": self.vocabulary_size,
                "encoder_hidden_dim": self.encoder_hidden_dim,
                "key_dim": self.key_dim,
                "key_offsets": list(self.key_offsets),
            }
        )
        return config
