"""The settings that the processes of one job must agree on, and what
only the chief writes."""

import argparse

import pytest

from keras_fido.training.job import add_engine_flags
from keras_fido.training.job import job_settings
from keras_fido.training.run_config import check_run_config


def parse(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--preset")
    p.add_argument("--batch-size", type=int, default=8)
    add_engine_flags(p)
    return p.parse_args(argv)


def test_per_process_flags_are_left_out_and_files_compared_by_content(
    tmp_path,
):
    preset = tmp_path / "preset"
    preset.mkdir()
    (preset / "config.json").write_text('{"a": 1}')
    common = ["--preset", str(preset), "--distribution", "data"]
    first = job_settings(parse([*common, "--process-id", "0"]))
    second = job_settings(parse([*common, "--process-id", "1"]))
    assert first == second
    assert "--process-id" not in first and "--coordinator" not in first
    assert first["--batch-size"] == 8
    (preset / "config.json").write_text('{"a": 2}')
    changed = job_settings(parse(common))
    differing = [name for name in first if first[name] != changed[name]]
    assert differing == ["--preset (its content)"]


def test_only_the_chief_records_the_run_config(tmp_path):
    config = {"backbone.hidden_dim": 16}
    check_run_config(tmp_path, config, chief=False)
    assert not (tmp_path / "run_config.json").exists()
    check_run_config(tmp_path, config, chief=True)
    assert (tmp_path / "run_config.json").exists()
    with pytest.raises(ValueError, match="backbone.hidden_dim"):
        check_run_config(tmp_path, {"backbone.hidden_dim": 32}, chief=False)
