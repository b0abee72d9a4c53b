"""Each private Keras / keras-hub name of `keras_fido._compat` still does
what keras_fido relies on: an upgrade that breaks one fails here, by name.
"""

import inspect
import os

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from keras_hub.models import Seq2SeqLM

from keras_fido import _compat


def test_safe_mode_scope_resets_and_restores_the_flag():
    outer = _compat.in_safe_mode()
    with _compat.SafeModeScope(outer):
        keras.config.enable_unsafe_deserialization()
        assert _compat.in_safe_mode() is False
        with _compat.SafeModeScope(None):
            assert _compat.in_safe_mode() is None
        assert _compat.in_safe_mode() is False
    assert _compat.in_safe_mode() is outer


def test_func_dump_encodes_code_as_lambda_layers_do():
    double = lambda x: 2 * x  # noqa: E731 - Lambda layers store lambdas

    code, defaults, closure = _compat.func_dump(double)
    stored = keras.layers.Lambda(double).get_config()["function"]["config"]
    assert (code, defaults, closure) == (
        stored["code"],
        stored["defaults"],
        stored["closure"],
    )


def test_classproperty_reads_from_the_class():
    class Holder:
        @_compat.classproperty
        def names(cls):
            return cls.__name__

    assert Holder.names == "Holder"


def test_any_equal_marks_values_inside_the_mask():
    ids = np.array([[5, 1, 7, 1]])
    mask = np.array([[True, True, True, False]])
    got = ops.convert_to_numpy(_compat.any_equal(ids, [1, 7], mask))
    np.testing.assert_array_equal(got, [[False, True, True, False]])


def test_convert_preprocessing_outputs_gives_backend_tensors_and_lists():
    dense = _compat.convert_preprocessing_outputs(tf.constant([1, 2]))
    assert ops.is_tensor(dense)
    np.testing.assert_array_equal(ops.convert_to_numpy(dense), [1, 2])
    strings = _compat.convert_preprocessing_outputs(tf.constant(["a", "b"]))
    assert strings == ["a", "b"]


def test_convert_to_numpy_takes_tf_and_backend_tensors():
    from_tf = _compat.convert_to_numpy(tf.constant([[1.0, 2.0]]))
    from_backend = _compat.convert_to_numpy(ops.ones((1, 2)))
    assert isinstance(from_tf, np.ndarray)
    assert isinstance(from_backend, np.ndarray)
    np.testing.assert_array_equal(from_tf, [[1.0, 2.0]])


def test_preset_file_names_and_loader(tmp_path):
    assert _compat.CONFIG_FILE == "config.json"
    assert _compat.TOKENIZER_CONFIG_FILE == "tokenizer.json"
    loader = _compat.KerasPresetLoader(str(tmp_path), config=None)
    assert callable(loader.load_tokenizer)
    parameters = inspect.signature(loader.load_tokenizer).parameters
    assert "config_file" in parameters


def test_generate_calls_the_hook_fido_overrides():
    name = _compat.NORMALIZE_GENERATE_INPUTS
    assert callable(getattr(Seq2SeqLM, name, None))
    assert f"self.{name}(" in inspect.getsource(Seq2SeqLM.generate)


def test_get_preset_file_resolves_a_local_preset_to_its_file(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    path = _compat.get_preset_file(str(tmp_path), "config.json")
    assert os.path.samefile(path, tmp_path / "config.json")
