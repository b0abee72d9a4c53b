"""SavedModel export of a FiDO reader for TF Serving: strings in, answers
out."""

import os
import shutil

import keras
import tensorflow as tf

from keras_fido.export.greedy_decode import greedy_decode
from keras_fido.models.fid_packing import join_question_block
from keras_fido.utils.atomic_write import replace_directory
from keras_fido.utils.checks import check_positive_int

TEXT_SIGNATURE = "serving_default"
TOKEN_SIGNATURE = "serving_tokens"
MEMORY_SIGNATURE = "serving_memory"
MEMORY_TOKEN_SIGNATURE = "serving_memory_tokens"


def export_saved_model(
    seq_2_seq_lm,
    export_dir,
    version=None,
    max_length=None,
    jit_compile=True,
    overwrite=False,
    verbose=False,
):
    """Exports a `FiDOSeq2SeqLM` as a SavedModel that TF Serving can serve.

    The SavedModel needs only TensorFlow and the tensorflow-text
    SentencePiece ops: no Python, no keras, no keras_fido. It has two
    signatures (four with passage memory, below), all greedy, each
    returning the same outputs:

    - `"serving_default"` takes strings: `question` `tf.string [B]`,
      `titles` and `texts` `tf.string [B, P]`. The preprocessor's own FiD
      formatting and SentencePiece tokenization run in the graph: a
      passage whose title and text are both empty is a missing passage
      (masked, so examples with different passage counts share one
      tensor), only the first `num_passages` passages are read, each is
      cut to `passage_length` tokens, and an example with no passages is
      answered from its question alone, all as `generate` does.
    - `"serving_tokens"` takes pre-tokenized passages:
      `encoder_token_ids` and `encoder_padding_mask`, `tf.int32
      [B, P, L]` (1 on real tokens), as the preprocessor packs them.

    A reader whose backbone has passage memory (`encoder_live_layers`,
    question block `q = encoder_question_length`) gets two more, which
    take the passages' stored memory (`keras_fido.models.passage_memory.
    encode_passage_memory`, as a memory store holds it) instead of running
    the memory encoder over them: a server that holds the store runs only
    the question block's memory layers, the live layers and the decoder.

    - `"serving_memory"`: `question` `tf.string [B]`; the passage blocks
      as the preprocessor packs them (`title: t context: c`, end token),
      `passage_token_ids` and `passage_padding_mask` `tf.int32 [B, P, N]`
      with `N = passage_length - q`; and `passage_memory` `tf.float32
      [B, P, N, d_enc]`. The question block is tokenized in the graph
      and packed in front of every passage with a real token, as the
      preprocessor packs it (an example without passages keeps its
      question in slot 0).
    - `"serving_memory_tokens"`: `encoder_token_ids` and
      `encoder_padding_mask` `tf.int32 [B, P, q + N]`, packed sequences
      (question block, then passage block), and `passage_memory`; only
      the question block of slot 0, the mask, and (for a copy head) the
      passage ids are read.

    Outputs: `answers` `tf.string [B]`; `token_ids` `tf.int32 [B, T - 1]`,
    the generated tokens through the end token, then pad ids;
    `token_scores` `tf.float32 [B, T - 1]`, each token's log-probability
    (0 after the end token); `scores` `tf.float32 [B]`, their sum. `T` is
    `max_length`.

    Decoding is `keras_fido.export.greedy_decode`: the reader's own cache
    (encoder and cross-attention K/V once, for the cross-attending layers
    only) and decoder step in a `tf.while_loop` that stops when every row
    has ended. With `jit_compile=True` the encoder and the loop are one
    XLA-compiled function (tokenization cannot be compiled and runs
    around it). TF Serving on CPU runs XLA only when started with
    `--xla_cpu_compilation_enabled=true`; export with `jit_compile=False`
    for a server that cannot.

    Rank errors name the input (`Shape of tensor question [] is not
    compatible with expected shape [?]`), and so do mismatched shapes of
    `titles`, `texts` and `question`, or of the two token inputs.

    Needs the TensorFlow backend. A reader trained under JAX or PyTorch is
    exported from its preset: `keras_fido.export.export_preset`, or
    `python tools/export_saved_model.py PRESET_DIR OUT_DIR`.

    Args:
        seq_2_seq_lm: a `keras_fido.models.FiDOSeq2SeqLM` with its
            preprocessor (the tokenizer is needed in the graph).
        export_dir: string. The model's base directory, as given to
            `tensorflow_model_server --model_base_path`; the SavedModel is
            written to `export_dir/<version>/`.
        version: positive int. Defaults to one more than the largest
            version already in `export_dir` (1 for a new directory).
        max_length: positive int, at least 2. The decoder length `T`,
            start token included. Defaults to the preprocessor's
            `decoder_sequence_length` (as `generate`).
        jit_compile: bool. XLA-compile the encoder and decoding loop.
            Defaults to `True`.
        overwrite: bool. Replace an existing version directory. Defaults
            to `False`.
        verbose: bool. Print the signatures. Defaults to `False`.

    Returns:
        The version directory, `export_dir/<version>`.

    Examples:
    ```python
    # KERAS_BACKEND=tensorflow
    reader = keras_fido.models.FiDOSeq2SeqLM.from_preset("my_fido")
    path = keras_fido.export.export_saved_model(reader, "serving/fido")

    # Anywhere with TensorFlow and tensorflow-text (no keras_fido):
    import tensorflow as tf
    import tensorflow_text  # registers the SentencePiece ops
    serve = tf.saved_model.load(path).signatures["serving_default"]
    serve(
        question=tf.constant(["what is the capital of france"]),
        titles=tf.constant([["France", ""]]),
        texts=tf.constant([["Its capital is Paris.", ""]]),
    )["answers"]
    ```
    """
    preprocessor, max_length = _checked_settings(
        seq_2_seq_lm, max_length, jit_compile
    )
    version_dir = _version_dir(export_dir, version, overwrite)
    answer = _answer_function(
        seq_2_seq_lm, preprocessor, max_length, jit_compile
    )
    # Each signature is traced once, here; the SavedModel root holds what
    # they capture: the reader's variables and the SentencePiece model.
    signatures = {
        TEXT_SIGNATURE: _serve_text(preprocessor, answer),
        TOKEN_SIGNATURE: _serve_tokens(answer),
    }
    width = _memory_width(seq_2_seq_lm.backbone)
    if width is not None:
        signatures[MEMORY_SIGNATURE] = _serve_memory(
            preprocessor, answer, width
        )
        signatures[MEMORY_TOKEN_SIGNATURE] = _serve_memory_tokens(
            answer, preprocessor.question_length, width
        )
    signatures = {
        name: fn.get_concrete_function() for name, fn in signatures.items()
    }
    _save(signatures, preprocessor, version_dir)
    if verbose:
        for name, fn in signatures.items():
            print(f"{version_dir} signature {name!r}:")
            print(fn.pretty_printed_signature())
    return version_dir


def _checked_settings(seq_2_seq_lm, max_length, jit_compile):
    """(the export's own preprocessor, the checked `max_length`)."""
    if keras.config.backend() != "tensorflow":
        raise ValueError(
            "`export_saved_model` needs the TensorFlow backend "
            "(KERAS_BACKEND=tensorflow): the serving graph is made of the "
            "reader's own TensorFlow ops. Received: backend "
            f"{keras.config.backend()!r}. Save the reader with "
            "`reader.save_to_preset(preset_dir)` and export the preset with "
            "`keras_fido.export.export_preset(preset_dir, export_dir)` or "
            "`python tools/export_saved_model.py PRESET_DIR OUT_DIR`, which "
            "load it under TensorFlow in a subprocess."
        )
    preprocessor = _export_preprocessor(seq_2_seq_lm)
    if max_length is None:
        max_length = preprocessor.decoder_sequence_length
    max_length = check_positive_int("max_length", max_length)
    if max_length < 2:
        raise ValueError(
            "`max_length` counts the start token, so it must be at least 2 "
            f"to generate anything. Received: max_length={max_length}"
        )
    if not isinstance(jit_compile, bool):
        raise ValueError(
            "`jit_compile` must be a bool. "
            f"Received: jit_compile={jit_compile!r}"
        )
    return preprocessor, max_length


def _answer_function(seq_2_seq_lm, preprocessor, max_length, jit_compile):
    """Passages in, the signatures' outputs out, around one concrete
    decoding function."""
    tokenizer = preprocessor.tokenizer

    # One concrete decoding function for the text and token signatures
    # (another for the memory ones): one function in the SavedModel, and
    # one XLA compilation per input shape at serving.
    def decode_passages(
        encoder_token_ids, encoder_padding_mask, passage_memory=None
    ):
        return greedy_decode(
            seq_2_seq_lm,
            encoder_token_ids,
            encoder_padding_mask,
            max_length,
            start_token_id=tokenizer.start_token_id,
            end_token_id=tokenizer.end_token_id,
            pad_token_id=tokenizer.pad_token_id,
            passage_memory=passage_memory,
        )

    specs = [
        tf.TensorSpec([None, None, None], tf.int32),
        tf.TensorSpec([None, None, None], tf.bool),
    ]
    function = tf.function(
        decode_passages, jit_compile=jit_compile, autograph=False
    )
    decoders = {False: function.get_concrete_function(*specs)}
    width = _memory_width(seq_2_seq_lm.backbone)
    if width is not None:
        memory_spec = tf.TensorSpec([None, None, None, width], tf.float32)
        decoders[True] = function.get_concrete_function(*specs, memory_spec)

    def answer(encoder_token_ids, encoder_padding_mask, passage_memory=None):
        inputs = [
            tf.cast(encoder_token_ids, "int32"),
            tf.cast(encoder_padding_mask, "bool"),
        ]
        if passage_memory is not None:
            inputs.append(tf.cast(passage_memory, "float32"))
        outputs = decoders[passage_memory is not None](*inputs)
        token_ids = outputs["token_ids"]
        with tf.device("cpu"):
            answers = preprocessor.generate_postprocess(
                {"decoder_token_ids": token_ids}
            )
        token_scores = outputs["token_scores"][:, 1:]
        return {
            "answers": answers,
            "token_ids": token_ids[:, 1:],
            "token_scores": token_scores,
            "scores": tf.reduce_sum(token_scores, axis=1),
        }

    return answer


def _serve_text(preprocessor, answer):
    """The `serving_default` function: strings in."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="question"),
            tf.TensorSpec([None, None], tf.string, name="titles"),
            tf.TensorSpec([None, None], tf.string, name="texts"),
        ],
        autograph=False,
    )
    def serve_text(question, titles, texts):
        question, titles, texts = _check_text_inputs(question, titles, texts)
        x = preprocessor.generate_preprocess(
            {"question": question, "titles": titles, "texts": texts}
        )
        return answer(x["encoder_token_ids"], x["encoder_padding_mask"])

    return serve_text


def _serve_tokens(answer):
    """The `serving_tokens` function: packed token ids in."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None], tf.int32, "encoder_token_ids"),
            tf.TensorSpec([None, None, None], tf.int32, "encoder_padding_mask"),
        ],
        autograph=False,
    )
    def serve_tokens(encoder_token_ids, encoder_padding_mask):
        ids = tf.ensure_shape(encoder_token_ids, [None, None, None])
        mask = tf.ensure_shape(encoder_padding_mask, [None, None, None])
        check = tf.debugging.assert_equal(
            tf.shape(ids),
            tf.shape(mask),
            message="`encoder_padding_mask` must have the shape of "
            "`encoder_token_ids` [batch, passages, length].",
        )
        with tf.control_dependencies([check]):
            ids, mask = tf.identity(ids), tf.identity(mask)
        return answer(ids, tf.not_equal(mask, 0))

    return serve_tokens


def _memory_width(backbone):
    """`encoder_hidden_dim` of a backbone with passage memory, else None."""
    if getattr(backbone, "encoder_live_layers", None) is None:
        return None
    return backbone.encoder_hidden_dim


def _serve_memory_tokens(answer, question_length, width):
    """The `serving_memory_tokens` function: packed token ids and the
    passages' stored memory in."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None], tf.int32, "encoder_token_ids"),
            tf.TensorSpec([None, None, None], tf.int32, "encoder_padding_mask"),
            tf.TensorSpec(
                [None, None, None, width], tf.float32, "passage_memory"
            ),
        ],
        autograph=False,
    )
    def serve_memory_tokens(
        encoder_token_ids, encoder_padding_mask, passage_memory
    ):
        ids = tf.ensure_shape(encoder_token_ids, [None, None, None])
        mask = tf.ensure_shape(encoder_padding_mask, [None, None, None])
        memory = tf.ensure_shape(passage_memory, [None, None, None, width])
        expected = tf.concat(
            [tf.shape(ids)[:2], [tf.shape(ids)[2] - question_length]], 0
        )
        checks = [
            tf.debugging.assert_equal(
                tf.shape(ids),
                tf.shape(mask),
                message="`encoder_padding_mask` must have the shape of "
                "`encoder_token_ids` [batch, passages, length].",
            ),
            tf.debugging.assert_equal(
                tf.shape(memory)[:3],
                expected,
                message="`passage_memory` must be [batch, passages, length - "
                f"{question_length} (the question block), {width}], "
                "beside `encoder_token_ids` [batch, passages, length].",
            ),
        ]
        with tf.control_dependencies(checks):
            ids, mask = tf.identity(ids), tf.identity(mask)
            memory = tf.identity(memory)
        return answer(ids, tf.not_equal(mask, 0), memory)

    return serve_memory_tokens


def _serve_memory(preprocessor, answer, width):
    """The `serving_memory` function: question strings, the passage
    blocks' token ids and their stored memory in."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="question"),
            tf.TensorSpec([None, None, None], tf.int32, "passage_token_ids"),
            tf.TensorSpec([None, None, None], tf.int32, "passage_padding_mask"),
            tf.TensorSpec(
                [None, None, None, width], tf.float32, "passage_memory"
            ),
        ],
        autograph=False,
    )
    def serve_memory(
        question, passage_token_ids, passage_padding_mask, passage_memory
    ):
        question, ids, mask, memory = _check_memory_inputs(
            question,
            passage_token_ids,
            passage_padding_mask,
            passage_memory,
            width,
        )
        ids, mask = _with_question_block(preprocessor, question, ids, mask)
        return answer(ids, mask, memory)

    return serve_memory


def _with_question_block(preprocessor, question, passage_ids, passage_mask):
    """`[B, P, q + N]` ids and bool mask as the preprocessor packs them
    (`fid_packing.join_question_block`)."""
    ids, mask, _ = join_question_block(
        preprocessor.tokenizer,
        question,
        (
            preprocessor.question_prefix,
            preprocessor.title_prefix,
            preprocessor.context_prefix,
        ),
        preprocessor.question_length,
        passage_ids,
        passage_mask,
    )
    return ids, mask


def _check_memory_inputs(question, ids, mask, memory, width):
    """Runtime rank and shape checks of `serving_memory`'s inputs."""
    question = tf.ensure_shape(question, [None])
    ids = tf.ensure_shape(ids, [None, None, None])
    mask = tf.ensure_shape(mask, [None, None, None])
    memory = tf.ensure_shape(memory, [None, None, None, width])
    checks = [
        tf.debugging.assert_equal(
            tf.shape(ids),
            tf.shape(mask),
            message="`passage_padding_mask` must have the shape of "
            "`passage_token_ids` [batch, passages, passage positions].",
        ),
        tf.debugging.assert_equal(
            tf.shape(memory)[:3],
            tf.shape(ids),
            message=f"`passage_memory` must be [batch, passages, passage "
            f"positions, {width}], beside `passage_token_ids`.",
        ),
        tf.debugging.assert_equal(
            tf.shape(ids)[0],
            tf.shape(question)[0],
            message="`passage_token_ids` must have one row per `question` "
            "[batch].",
        ),
    ]
    with tf.control_dependencies(checks):
        return tuple(tf.identity(t) for t in (question, ids, mask, memory))


def _save(signatures, preprocessor, version_dir):
    """Writes the SavedModel into `version_dir`, all at once."""
    root = tf.__internal__.tracking.AutoTrackable()
    root.model_variables = _captured_variables(signatures.values())
    root.tokenizer_resources = _resources(preprocessor)
    # Written beside the version directory and renamed at the end, so a
    # server watching `export_dir` never loads a half-written version.
    staging_dir = os.path.join(
        os.path.dirname(version_dir),
        f".tmp-{os.path.basename(version_dir)}-{os.getpid()}",
    )
    shutil.rmtree(staging_dir, ignore_errors=True)
    try:
        tf.saved_model.save(root, staging_dir, signatures=signatures)
        replace_directory(staging_dir, version_dir)
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)


def _export_preprocessor(seq_2_seq_lm):
    """A private copy of the reader's preprocessor, with fresh tokenizer
    resources for the SavedModel to own (the reader's are left alone)."""
    preprocessor = getattr(seq_2_seq_lm, "preprocessor", None)
    if preprocessor is None:
        raise ValueError(
            "Exporting a reader for serving needs its preprocessor: the "
            "SavedModel tokenizes questions and passages and detokenizes "
            "answers in the graph with the preprocessor's SentencePiece "
            "tokenizer. Received: seq_2_seq_lm.preprocessor=None. Build the "
            "reader as `FiDOSeq2SeqLM(backbone, preprocessor)`, or export a "
            "preset saved together with its preprocessor and tokenizer."
        )
    tokenizer = getattr(preprocessor, "tokenizer", None)
    proto = getattr(tokenizer, "proto", None)
    if proto is None:
        raise ValueError(
            "Exporting a reader for serving needs a tokenizer with its "
            "SentencePiece vocabulary. Received: "
            + (
                "seq_2_seq_lm.preprocessor.tokenizer=None"
                if tokenizer is None
                else "a tokenizer with proto=None"
            )
            + ". Set one, e.g. `FiDOTokenizer(proto=...)`, or export a "
            "preset saved with `assets/tokenizer/vocabulary.spm`."
        )
    copy = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(preprocessor)
    )
    copy.tokenizer.set_proto(proto)
    copy.build(None)
    return copy


def _captured_variables(concrete_functions):
    variables = {}
    for fn in concrete_functions:
        for variable in fn.variables:
            variables.setdefault(id(variable), variable)
    return list(variables.values())


def _resources(layer):
    """The TensorFlow resources (the SentencePiece model) under `layer`."""
    from tensorflow.saved_model.experimental import TrackableResource

    return [
        trackable
        for trackable in tf.train.TrackableView(layer).descendants()
        if isinstance(trackable, TrackableResource)
    ]


def _check_text_inputs(question, titles, texts):
    """Runtime rank and shape checks whose messages name the inputs."""
    question = tf.ensure_shape(question, [None])
    titles = tf.ensure_shape(titles, [None, None])
    texts = tf.ensure_shape(texts, [None, None])
    checks = [
        tf.debugging.assert_equal(
            tf.shape(titles),
            tf.shape(texts),
            message="`titles` and `texts` must have the same shape "
            "[batch, passages]; pad missing passages with empty strings.",
        ),
        tf.debugging.assert_equal(
            tf.shape(titles)[0],
            tf.shape(question)[0],
            message="`titles` and `texts` must have one row per `question` "
            "[batch].",
        ),
    ]
    # Everything downstream waits for the checks, so they fail first.
    with tf.control_dependencies(checks):
        return tf.identity(question), tf.identity(titles), tf.identity(texts)


def _version_dir(export_dir, version, overwrite):
    if not isinstance(export_dir, (str, os.PathLike)):
        raise ValueError(
            "`export_dir` must be a directory path. "
            f"Received: export_dir={export_dir!r}"
        )
    export_dir = os.fspath(export_dir)
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise ValueError(
            "`export_dir` must be a directory (TF Serving's model base "
            f"path). Received: export_dir={export_dir!r}, a file"
        )
    os.makedirs(export_dir, exist_ok=True)
    if version is None:
        versions = [int(n) for n in os.listdir(export_dir) if n.isdigit()]
        version = max(versions, default=0) + 1
    version = check_positive_int("version", version)
    version_dir = os.path.join(export_dir, str(version))
    if os.path.exists(version_dir) and not overwrite:
        raise ValueError(
            f"Version {version} already exists in {export_dir!r}. Pass "
            "another `version` (TF Serving serves the largest), leave it "
            "None for the next one, or `overwrite=True`. "
            f"Received: version={version}"
        )
    return version_dir
