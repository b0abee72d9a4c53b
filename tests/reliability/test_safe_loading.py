"""Loading a preset or a `.keras` file never runs code from it: crafted
configs (an unregistered class, `os.system`, a lambda) and pickled
weights or vocabularies are refused with a message, and their payloads,
which would create a marker file, never run."""

import json
import pickle
import shutil
import zipfile

import keras
import pytest

from keras_fido._compat import SafeModeScope
from keras_fido._compat import func_dump
from keras_fido._compat import in_safe_mode
from keras_fido.models import FiDOBackbone
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.testing.fido_models import tiny_backbone

LOADERS = {
    "FiDOBackbone": FiDOBackbone.from_preset,
    "FiDOSeq2SeqLM": FiDOSeq2SeqLM.from_preset,
}


class PicklePayload:
    """Unpickling this creates the file `path`: a stand-in for any code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def payload_function(marker):
    """A function that creates `marker`, with the path in its code (no
    defaults or closure, which JSON would turn into unloadable lists)."""
    return eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")


def lambda_model(marker):
    """A Functional model whose Lambda layer creates `marker` whenever it
    is called, which deserializing the model does."""
    inputs = keras.Input((2,))
    outputs = keras.layers.Lambda(payload_function(marker))(inputs)
    model = keras.Model(inputs, outputs)
    marker.unlink()  # built here, so it ran once: start clean
    return model


def serialized(model):
    """`model`'s config as a JSON file holds it."""
    return json.loads(json.dumps(keras.saving.serialize_keras_object(model)))


@pytest.fixture
def unsafe_mode():
    """`keras.config.enable_unsafe_deserialization()` for one test: a
    user may have called it; loading a preset must stay safe anyway."""
    # The scope restores the caller's setting when the test ends.
    with SafeModeScope(in_safe_mode()):
        keras.config.enable_unsafe_deserialization()
        yield


@pytest.fixture(scope="module")
def clean_preset(sentencepiece_proto, tmp_path_factory):
    tokenizer = FiDOTokenizer(proto=sentencepiece_proto)
    backbone = tiny_backbone(
        "fido", vocabulary_size=tokenizer.vocabulary_size()
    )
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer, num_passages=2, passage_length=16, decoder_sequence_length=4
    )
    path = tmp_path_factory.mktemp("clean") / "preset"
    FiDOSeq2SeqLM(backbone, preprocessor).save_to_preset(str(path))
    return path


@pytest.fixture
def preset(clean_preset, tmp_path):
    """A copy of a clean reader preset, to tamper with."""
    return shutil.copytree(clean_preset, tmp_path / "preset")


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "payload_ran"


def edit_json(path, edit):
    config = json.loads(path.read_text())
    path.write_text(json.dumps(edit(config)))


def test_the_lambda_payloads_run_when_safe_mode_is_off(marker, tmp_path):
    # The controls: the crafted config and file really would run code.
    model = lambda_model(marker)
    keras.saving.deserialize_keras_object(serialized(model), safe_mode=False)
    assert marker.exists()
    marker.unlink()
    model.save(tmp_path / "lambda.keras")
    keras.saving.load_model(tmp_path / "lambda.keras", safe_mode=False)
    assert marker.exists()


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_clean_preset_loads_in_safe_mode(preset, loader, unsafe_mode):
    loaded = LOADERS[loader](str(preset))
    assert isinstance(loaded, (FiDOBackbone, FiDOSeq2SeqLM))
    assert in_safe_mode() is False  # the user's setting is restored


def crafted_configs(marker):
    return {
        "unregistered class": {
            "module": "evil",
            "class_name": "Payload",
            "config": {"path": str(marker)},
            "registered_name": "evil>Payload",
        },
        "module path": {
            "module": "os",
            "class_name": "system",
            "config": {"command": f"touch {marker}"},
            "registered_name": None,
        },
        "lambda": {
            "class_name": "__lambda__",
            "config": {"value": list(func_dump(payload_function(marker)))},
            "registered_name": "__lambda__",
        },
        "lambda layer": serialized(lambda_model(marker)),
    }


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize(
    "kind", ["unregistered class", "module path", "lambda", "lambda layer"]
)
def test_config_json_naming_anything_but_the_backbone_is_refused(
    preset, marker, kind, loader, unsafe_mode
):
    config = crafted_configs(marker)[kind]
    (preset / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="must describe a registered"):
        LOADERS[loader](str(preset))
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["unregistered class", "module path"])
def test_keras_hub_loader_refuses_an_unregistered_class(preset, marker, kind):
    # keras_hub.models.Backbone.from_preset bypasses our checks; keras-hub
    # refuses these by itself.
    config = crafted_configs(marker)[kind]
    (preset / "config.json").write_text(json.dumps(config))
    import keras_hub

    with pytest.raises(ValueError, match="no class registered"):
        keras_hub.models.Backbone.from_preset(str(preset))
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["module path", "lambda"])
def test_payload_nested_in_the_backbone_config_is_refused(
    preset, marker, kind, unsafe_mode
):
    payload = crafted_configs(marker)[kind]

    def plant(config):
        config["config"]["dtype"] = payload
        return config

    edit_json(preset / "config.json", plant)
    with pytest.raises((ValueError, TypeError)) as error:
        FiDOSeq2SeqLM.from_preset(str(preset))
    assert "lambda" in str(error.value) or "system" in str(error.value)
    assert not marker.exists()


def test_lambda_model_as_the_task_backbone_is_refused(
    preset, marker, unsafe_mode
):
    # keras-hub deserializes task.json's backbone with whatever class it
    # names; safe mode stops the lambda before it is called.
    def plant(config):
        config["config"]["backbone"] = serialized(lambda_model(marker))
        return config

    edit_json(preset / "task.json", plant)
    with pytest.raises(ValueError, match="lambda"):
        FiDOSeq2SeqLM.from_preset(str(preset))
    assert not marker.exists()


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_pickled_weights_are_refused_unopened(preset, marker, loader):
    (preset / "model.weights.h5").write_bytes(
        pickle.dumps(PicklePayload(marker))
    )
    with pytest.raises(ValueError, match="model.weights.h5"):
        LOADERS[loader](str(preset))
    assert not marker.exists()


def test_pickled_vocabulary_is_refused(preset, marker):
    vocabulary = preset / "assets" / "tokenizer" / "vocabulary.spm"
    assert vocabulary.exists()
    vocabulary.write_bytes(pickle.dumps(PicklePayload(marker)))
    with pytest.raises(Exception, match="(?i)pars|proto|sentencepiece"):
        FiDOSeq2SeqLM.from_preset(str(preset))
    assert not marker.exists()


def test_keras_file_with_a_lambda_layer_is_refused(tmp_path, marker):
    path = tmp_path / "lambda.keras"
    lambda_model(marker).save(path)
    with pytest.raises(ValueError, match="lambda"):
        keras.saving.load_model(path)
    assert not marker.exists()


def test_keras_file_with_pickled_weights_is_refused(tmp_path, marker):
    path = tmp_path / "model.keras"
    model = tiny_backbone("fido", vocabulary_size=64)
    model.save(path)
    tampered = tmp_path / "tampered.keras"
    with zipfile.ZipFile(path) as source:
        with zipfile.ZipFile(tampered, "w") as target:
            for item in source.infolist():
                data = source.read(item.filename)
                if item.filename == "model.weights.h5":
                    data = pickle.dumps(PicklePayload(marker))
                target.writestr(item, data)
    with pytest.raises(Exception):
        keras.saving.load_model(tampered)
    assert not marker.exists()
