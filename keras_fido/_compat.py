"""Every private Keras / keras-hub name keras_fido uses, in one place.

Each name below says what it is used for and why its public alternative
does not do (or what the public alternative is). `tests/test_compat.py`
checks each one's behaviour, so an upgrade that moves or changes one
fails there, by name, instead of deep inside a model.
"""

# --- Keras ---------------------------------------------------------------

# A scope that sets the safe-mode flag of deserialization and restores the
# caller's setting on exit. Public alternative: none;
# `keras.config.enable_unsafe_deserialization()` only turns safe mode off,
# globally and for good. `FiDOBackbone.from_preset` uses
# `SafeModeScope(None)` to load presets in the default safe mode whatever
# the user enabled.
from keras.src.saving.serialization_lib import SafeModeScope

# Used by tests only: the flag `SafeModeScope` sets, read and restored
# around a test. Public alternative: none (only the one-way switch above).
from keras.src.saving.serialization_lib import in_safe_mode

# Used by tests only: serializes a Python function the way a Keras Lambda
# layer stores it, to build a malicious preset. Public alternative: none.
from keras.src.utils.python_utils import func_dump

# --- keras-hub -----------------------------------------------------------
# The file names of a preset directory, and its loader: used to load a
# preset that holds a tokenizer only. Public alternative: none
# (`Tokenizer.from_preset` needs a backbone `config.json`).
from keras_hub.src.utils.preset_utils import CONFIG_FILE
from keras_hub.src.utils.preset_utils import TOKENIZER_CONFIG_FILE
from keras_hub.src.utils.preset_utils import KerasPresetLoader

# Resolves a preset handle (local directory, `hf://`, `kaggle://`) to the
# local path of one of its files, downloading it the way keras-hub's own
# `from_preset` does, so that a remote preset can be checked exactly as a
# directory before anything is deserialized. Public alternative: none
# (`from_preset` downloads and deserializes in one step).
from keras_hub.src.utils.preset_utils import get_file as get_preset_file

# Backbone.presets is a class property in keras-hub; an override must be
# one too. Public alternative: none (a plain `@property` is not readable
# from the class).
from keras_hub.src.utils.python_utils import classproperty

# Marks the first stop token of generated sequences, as keras-hub's own
# Seq2SeqLM.generate does, so that both agree. Public alternative: the
# same loop over `keras.ops.equal` / `logical_or`; kept shared instead.
from keras_hub.src.utils.tensor_utils import any_equal

# Turns the tf.Tensor outputs of in-graph preprocessing into the backend's
# tensors (lists for strings), and NumPy arrays under Grain, as every
# keras-hub preprocessor does. Public alternative: none.
from keras_hub.src.utils.tensor_utils import convert_preprocessing_outputs

# Converts a tensor of the current backend, a tf.Tensor, or any array-like
# to NumPy. Public alternative: `keras.ops.convert_to_numpy`, which takes
# only tensors of the current backend (preprocessing holds tf tensors on
# every backend).
from keras_hub.src.utils.tensor_utils import convert_to_numpy

# The private hook of keras-hub's `generate` that `FiDOSeq2SeqLM`
# overrides, to accept one FiD example dict as a batch of one. Public
# alternative: none (overriding `generate` would copy its body).
NORMALIZE_GENERATE_INPUTS = "_normalize_generate_inputs"

__all__ = [
    "CONFIG_FILE",
    "KerasPresetLoader",
    "NORMALIZE_GENERATE_INPUTS",
    "SafeModeScope",
    "TOKENIZER_CONFIG_FILE",
    "any_equal",
    "classproperty",
    "convert_preprocessing_outputs",
    "convert_to_numpy",
    "func_dump",
    "get_preset_file",
    "in_safe_mode",
]
