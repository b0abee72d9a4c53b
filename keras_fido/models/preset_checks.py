"""The checks a saved preset passes before anything in it is loaded.

`FiDOBackbone.from_preset` and `FiDOSeq2SeqLM.from_preset` run
`check_preset_directory` on a directory or remote handle, then
deserialize inside `default_safe_mode`.
"""

import json
import os

import keras

from keras_fido._compat import SafeModeScope
from keras_fido._compat import get_preset_file
from keras_fido.models.fido_presets import backbone_presets
from keras_fido.utils.atomic_write import restore_interrupted
from keras_fido.utils.checks import check_weights_file


def default_safe_mode():
    """A scope that undoes `keras.config.enable_unsafe_deserialization()`.

    Inside it every `deserialize_keras_object` call is in safe mode (its
    default), so no lambda is rebuilt. Not `SafeModeScope(True)`: that
    would also stop keras-hub reading the tokenizer's vocabulary, a file
    path, from the preset's assets after deserialization.
    """
    return SafeModeScope(None)


def check_preset_directory(preset, load_weights, backbone_cls):
    """Raises a clear error for a preset that is neither a name nor a
    complete, safe preset, local or remote.

    A remote handle (`hf://`, `kaggle://`, `gs://`, ...) is first resolved
    to local files by keras-hub's own download (`_compat.get_preset_file`,
    cached where keras-hub caches), then checked as a directory is.

    Before anything in the preset is deserialized: its `config.json`
    must name a registered `backbone_cls` (`FiDOBackbone`): not a
    function, a lambda or another class, which keras-hub would otherwise
    build as the backbone of a task. With `load_weights` its
    `model.weights.h5` must be a readable HDF5 file
    (`check_weights_file`; never unpickled).
    """
    if not isinstance(preset, (str, os.PathLike)):
        raise ValueError(
            "`preset` must be a preset name or a directory path. "
            f"Received: preset={preset!r}"
        )
    preset = os.fspath(preset)
    required = ["config.json"] + (["model.weights.h5"] if load_weights else [])
    if "://" in preset:
        paths = _fetch_preset_files(preset, required)
    else:
        paths = _local_preset_files(preset, required)
    check_preset_config(paths["config.json"], backbone_cls)
    if load_weights:
        check_weights_file(paths["model.weights.h5"])


def _local_preset_files(preset, required):
    restore_interrupted(preset)
    if not os.path.isdir(preset):
        raise ValueError(
            f"Unknown preset {preset!r}: it is neither a known preset name "
            f"nor a directory. Known presets: {sorted(backbone_presets)}."
        )
    for name in required:
        if not os.path.exists(os.path.join(preset, name)):
            raise ValueError(
                f"Preset directory {preset!r} has no `{name}`; a preset "
                "written by `save_to_preset` holds config.json and "
                f"model.weights.h5. Found: {sorted(os.listdir(preset))}"
            )
    return {name: os.path.join(preset, name) for name in required}


def _fetch_preset_files(preset, required):
    """Local paths of a remote preset's files, downloaded by keras-hub."""
    paths = {}
    for name in required:
        try:
            paths[name] = get_preset_file(preset, name)
        except FileNotFoundError:
            raise ValueError(
                f"Preset {preset!r} has no `{name}`; a preset written by "
                "`save_to_preset` holds config.json and model.weights.h5."
            ) from None
    return paths


def check_preset_config(config_path, backbone_cls):
    """Raises a `ValueError` unless the JSON file `config_path` describes
    a registered subclass of `backbone_cls`."""
    _check_registered(config_path, _read_json(config_path), backbone_cls)


def check_component_preset(
    preset, config_file, expected_cls, tokenizer_cls=None
):
    """Raises unless a preset's `config_file` (`tokenizer.json`,
    `preprocessor.json`) names a registered subclass of `expected_cls`,
    and the tokenizer it nests, if any, one of `tokenizer_cls`.

    Local directories and remote handles alike (a handle is resolved by
    keras-hub's own download first); a built-in preset name is left to
    keras-hub. Nothing in the file is deserialized before this passes.
    """
    if not isinstance(preset, (str, os.PathLike)):
        raise ValueError(
            "`preset` must be a preset handle or a directory path. "
            f"Received: preset={preset!r}"
        )
    preset = os.fspath(preset)
    if "://" in preset:
        try:
            path = get_preset_file(preset, config_file)
        except FileNotFoundError:
            raise ValueError(
                f"Preset {preset!r} has no `{config_file}`."
            ) from None
    else:
        restore_interrupted(preset)
        path = os.path.join(preset, config_file)
        if not os.path.isfile(path):
            return  # Not a directory with the file: keras-hub explains.
    config = _json_object(path)
    _check_registered(path, config, expected_cls)
    tokenizer = config.get("config", {}).get("tokenizer")
    if tokenizer is not None and tokenizer_cls is not None:
        _check_registered(f"{path} (its tokenizer)", tokenizer, tokenizer_cls)


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{path!r} must be a JSON object. Received a file that does "
            f"not parse as JSON: {error}"
        ) from None


def _json_object(path):
    config = _read_json(path)
    if not isinstance(config, dict):
        raise ValueError(
            f"{path!r} must be a JSON object. Received a JSON "
            f"{type(config).__name__}."
        )
    return config


def _check_registered(where, config, expected_cls):
    name = config.get("registered_name") if isinstance(config, dict) else None
    found = (
        keras.saving.get_registered_object(name)
        if isinstance(name, str)
        else None
    )
    if not (isinstance(found, type) and issubclass(found, expected_cls)):
        raise ValueError(
            f"{where!r} must describe a registered `{expected_cls.__name__}` "
            "(its `registered_name`); nothing else is loaded from a "
            f"preset. Received: registered_name={name!r}"
        )
