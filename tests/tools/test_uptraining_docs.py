"""tools/uptraining_docs.py: the uptraining table comes from the records."""

import importlib.util
import json
import os

import pytest

TOOL = os.path.join(
    os.path.dirname(__file__), "..", "..", "tools", "uptraining_docs.py"
)


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("uptraining_docs", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(backend, after):
    return {
        "command": f"KERAS_BACKEND={backend} python recipes/uptrain_fido.py",
        "backend": backend,
        "machine": "x86_64, 2 CPU cores",
        "cross_attention_interval": 2,
        "num_key_value_heads": 1,
        "steps": 20,
        "batch_size": 16,
        "input_length": 32,
        "source_loss": {"/tmp/source": 3.0},
        "converted_loss_before": 6.0,
        "converted_loss_after": after,
    }


def test_the_table_is_written_between_the_markers(tool, tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    for backend, after in (("jax", 3.3), ("tensorflow", 3.6), ("torch", 3.3)):
        (records / f"{backend}.json").write_text(
            json.dumps(record(backend, after))
        )
    page = tmp_path / "conversion.md"
    page.write_text(f"intro\n{tool.BEGIN}\nhand-typed\n{tool.END}\noutro\n")

    tool.main(["--records", str(records), "--out", str(page)])

    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "hand-typed" not in text
    assert "| model | loss (jax, torch) | loss (tensorflow) |" in text
    assert "| after 20 uptraining steps | 3.300 | 3.600 |" in text
    assert "close 90% (jax, torch), 80% (tensorflow) of the gap" in text
    assert "`KERAS_BACKEND=torch python recipes/uptrain_fido.py`" in text


def test_a_page_without_the_markers_is_refused(tool):
    with pytest.raises(ValueError, match="markers"):
        tool.replace_section("no markers here", "table")


def test_no_records_names_the_command_to_run(tool, tmp_path):
    with pytest.raises(SystemExit, match="recipes/uptrain_fido.py"):
        tool.main(["--records", str(tmp_path), "--out", "unused.md"])
