#!/usr/bin/env bash
# Builds the keras_fido wheel and checks it outside the checkout: a venv
# that sees the installed dependencies (--system-site-packages) gets the
# wheel alone (--no-deps); from an empty directory it then runs a tiny
# `from_preset` / `generate` with a saved preset round trip, and the
# quickstart on 20 questions for one epoch.
# Usage: bash tools/check_wheel.sh [work directory]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work/dist" "$work/run"

if python -m build --version >/dev/null 2>&1; then
    python -m build --wheel --outdir "$work/dist" .
else
    python -m pip wheel . --no-deps --no-build-isolation -w "$work/dist"
fi
python -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --no-deps --force-reinstall \
    "$work"/dist/keras_fido-*.whl

cd "$work/run"
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
"$work/venv/bin/python" - <<'PY'
import keras_fido
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.data import corpus_lines
from keras_fido.data import train_sentencepiece

assert "site-packages" in keras_fido.__file__, keras_fido.__file__
proto = train_sentencepiece(corpus_lines(), vocab_size=300, extra_ids=100)
tokenizer = FiDOTokenizer(proto=proto)
preprocessor = FiDOSeq2SeqLMPreprocessor(
    tokenizer, num_passages=2, passage_length=64, decoder_sequence_length=8
)
reader = FiDOSeq2SeqLM.from_preset(
    "fido_tiny",
    preprocessor=preprocessor,
    vocabulary_size=tokenizer.vocabulary_size(),
)
example = {
    "question": "what is the capital of france",
    "titles": ["France", "Paris"],
    "texts": ["Its capital is Paris.", "Paris is a city."],
}
answer = reader.generate(example, max_length=8)
reader.save_to_preset("preset")
again = FiDOSeq2SeqLM.from_preset("preset").generate(example, max_length=8)
assert isinstance(answer, str) and answer == again, (answer, again)
print(f"wheel ok: generate -> {answer!r}")
PY
"$work/venv/bin/python" -m keras_fido.quickstart --limit 20 --epochs 1
