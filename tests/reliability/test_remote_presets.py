"""A remote preset handle (`hf://...`) is resolved to local files by
keras-hub's own download, then checked as a local directory is: crafted
configs and damaged weights are refused before anything is deserialized.
The downloads are served from a local directory: no network."""

import json
import os
import shutil

import keras
import numpy as np
import pytest
from keras.src.utils.python_utils import func_dump
from keras_hub.src.utils import preset_utils

from keras_fido.models import FiDOBackbone
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.testing.fido_models import tiny_backbone

HANDLE = "hf://someone/fido-reader"


@pytest.fixture(scope="module")
def reader(sentencepiece_proto):
    tokenizer = FiDOTokenizer(proto=sentencepiece_proto)
    backbone = tiny_backbone(
        "fido", vocabulary_size=tokenizer.vocabulary_size()
    )
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer, num_passages=2, passage_length=16, decoder_sequence_length=4
    )
    return FiDOSeq2SeqLM(backbone, preprocessor)


@pytest.fixture
def hub(reader, tmp_path, monkeypatch):
    """Serves `HANDLE` from `served/` the way the Hugging Face Hub would:
    each requested file is copied into a cache and its path returned."""
    served = tmp_path / "served"
    reader.save_to_preset(str(served))
    cache = tmp_path / "cache"
    downloads = []

    def hf_hub_download(repo_id, filename, **kwargs):
        assert repo_id == HANDLE.removeprefix("hf://")
        source = served / filename
        if not source.exists():
            raise preset_utils.EntryNotFoundError(f"{filename} not found")
        target = cache / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        downloads.append(filename)
        return str(target)

    monkeypatch.setattr(
        preset_utils.huggingface_hub, "hf_hub_download", hf_hub_download
    )
    return served, downloads


def payload_function(marker):
    return eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")


def crafted_configs(marker):
    return {
        "unregistered class": {
            "module": "evil",
            "class_name": "Payload",
            "config": {"path": str(marker)},
            "registered_name": "evil>Payload",
        },
        "lambda": {
            "class_name": "__lambda__",
            "config": {"value": list(func_dump(payload_function(marker)))},
            "registered_name": "__lambda__",
        },
    }


@pytest.mark.parametrize("loader", [FiDOBackbone, FiDOSeq2SeqLM])
def test_served_preset_loads(hub, reader, loader):
    served, downloads = hub
    loaded = loader.from_preset(HANDLE)
    backbone = loaded if loader is FiDOBackbone else loaded.backbone
    for a, b in zip(backbone.weights, reader.backbone.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )
    assert "config.json" in downloads and "model.weights.h5" in downloads


@pytest.mark.parametrize("kind", ["unregistered class", "lambda"])
@pytest.mark.parametrize("loader", [FiDOBackbone, FiDOSeq2SeqLM])
def test_served_crafted_config_is_refused(hub, tmp_path, kind, loader):
    served, _ = hub
    marker = tmp_path / "payload_ran"
    config = crafted_configs(marker)[kind]
    (served / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="must describe a registered"):
        loader.from_preset(HANDLE)
    assert not marker.exists()


def test_served_truncated_weights_are_refused(hub):
    served, _ = hub
    weights = served / "model.weights.h5"
    size = os.path.getsize(weights)
    with open(weights, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(ValueError, match="truncated or damaged"):
        FiDOSeq2SeqLM.from_preset(HANDLE)


def test_served_preset_without_weights_is_refused(hub):
    served, _ = hub
    (served / "model.weights.h5").unlink()
    with pytest.raises(ValueError, match="has no `model.weights.h5`"):
        FiDOBackbone.from_preset(HANDLE)
    FiDOBackbone.from_preset(HANDLE, load_weights=False)


@pytest.mark.parametrize(
    "loader, config_file",
    [
        (FiDOTokenizer, "tokenizer.json"),
        (FiDOSeq2SeqLMPreprocessor, "preprocessor.json"),
    ],
)
def test_served_tokenizer_and_preprocessor_load(
    hub, reader, loader, config_file
):
    served, downloads = hub
    loaded = loader.from_preset(HANDLE)
    assert isinstance(loaded, loader)
    assert config_file in downloads
    example = {"question": "what is it", "passages": []}
    if loader is FiDOTokenizer:
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded("a b c")),
            keras.ops.convert_to_numpy(reader.preprocessor.tokenizer("a b c")),
        )
    else:
        expected = reader.preprocessor.generate_preprocess([example])
        actual = loaded.generate_preprocess([example])
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(actual["encoder_token_ids"]),
            keras.ops.convert_to_numpy(expected["encoder_token_ids"]),
        )


@pytest.mark.parametrize("remote", [True, False])
@pytest.mark.parametrize("kind", ["unregistered class", "lambda", "backbone"])
@pytest.mark.parametrize(
    "loader, config_file",
    [
        (FiDOTokenizer, "tokenizer.json"),
        (FiDOSeq2SeqLMPreprocessor, "preprocessor.json"),
    ],
)
def test_crafted_tokenizer_or_preprocessor_config_is_refused(
    hub, tmp_path, remote, kind, loader, config_file
):
    served, _ = hub
    marker = tmp_path / "payload_ran"
    if kind == "backbone":
        # A registered keras_fido class, but not the one asked for.
        config = json.loads((served / "config.json").read_text())
    else:
        config = crafted_configs(marker)[kind]
    (served / config_file).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f"registered `{loader.__name__}`"):
        loader.from_preset(HANDLE if remote else str(served))
    assert not marker.exists()


def test_crafted_tokenizer_inside_a_preprocessor_is_refused(hub, tmp_path):
    served, _ = hub
    marker = tmp_path / "payload_ran"
    config = json.loads((served / "preprocessor.json").read_text())
    config["config"]["tokenizer"] = crafted_configs(marker)[
        "unregistered class"
    ]
    (served / "preprocessor.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="its tokenizer"):
        FiDOSeq2SeqLMPreprocessor.from_preset(HANDLE)
    assert not marker.exists()
