"""Where a span-corruption pretraining run resumes (the run itself:
tests/recipes/test_pretrain.py)."""

import json

from keras_fido.training.span_corruption_pretraining import resume_point


def test_a_new_run_starts_at_the_beginning(tmp_path):
    assert resume_point(str(tmp_path / "backup")) == (0, 0)


def test_a_run_resumes_at_its_last_checkpoint(tmp_path):
    (tmp_path / "training_metadata.json").write_text(json.dumps({"epoch": 3}))
    (tmp_path / "step.json").write_text(json.dumps({"epoch": 3, "step": 250}))
    assert resume_point(str(tmp_path)) == (3, 250)


def test_a_step_without_a_checkpoint_is_not_resumed(tmp_path):
    (tmp_path / "step.json").write_text(json.dumps({"epoch": 1, "step": 9}))
    assert resume_point(str(tmp_path)) == (0, 0)
