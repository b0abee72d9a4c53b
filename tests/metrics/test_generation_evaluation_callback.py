import os

import keras
import numpy as np
import pytest

from keras_fido.metrics import GenerationEvaluationCallback


def _examples():
    return [
        {
            "question": "What is the capital of France?",
            "ctxs": [{"title": "France", "text": "Paris is its capital."}],
            "answers": ["Paris"],
        },
        {
            "question": "What currency is used in Japan?",
            "ctxs": [{"title": "Japan", "text": "The yen (JPY)."}],
            "answers": ["Japanese yen", "JPY"],
        },
        {
            "question": "Which region is Peru in?",
            "passages": [],
            "target": "Americas",
        },
    ]


class FakeReader:
    """Answers from a script, one list of answers per evaluation."""

    def __init__(self, script, as_bytes=False):
        self.script = list(script)
        self.evaluation = -1
        self.position = 0
        self.calls = []
        self.saved = []
        self.as_bytes = as_bytes

    def start_evaluation(self):
        self.evaluation += 1
        self.position = 0

    def generate(self, inputs, **kwargs):
        assert isinstance(inputs, list)
        self.calls.append((len(inputs), kwargs))
        answers = self.script[self.evaluation]
        out = answers[self.position : self.position + len(inputs)]
        self.position += len(inputs)
        if self.as_bytes:
            return np.array([a.encode("utf-8") for a in out], dtype=object)
        return out

    def save_weights(self, path):
        self.saved.append((path, self.evaluation))


def _run_epochs(callback, model, epochs):
    callback.set_model(model)
    all_logs = []
    for epoch in range(epochs):
        if (epoch + 1) % callback.every_n_epochs == 0:
            model.start_evaluation()
        logs = {"loss": 1.0}
        callback.on_epoch_end(epoch, logs)
        all_logs.append(logs)
    return all_logs


def test_logs_metrics_and_saves_best(tmp_path, capsys):
    path = str(tmp_path / "best.weights.h5")
    model = FakeReader(
        [
            ["Paris", "euro", "Asia"],  # EM 1/3
            ["Paris", "the yen", "americas"],  # EM 2/3, new best
            ["Lyon", "JPY", "Americas"],  # EM 2/3, not better
            ["Lyon", "yen", "Europe"],  # EM 0
        ]
    )
    callback = GenerationEvaluationCallback(
        _examples(),
        batch_size=2,
        checkpoint_path=path,
        generate_kwargs={"max_length": 8},
    )
    logs = _run_epochs(callback, model, 4)

    ems = [log["val_exact_match"] for log in logs]
    assert ems == pytest.approx([100 / 3, 200 / 3, 200 / 3, 0.0])
    # "the yen" vs "Japanese yen": p = 1, r = 1/2 -> F1 2/3.
    assert logs[1]["val_f1"] == pytest.approx(100 * (1 + 2 / 3 + 1) / 3)
    assert all(log["loss"] == 1.0 for log in logs)
    # Saved when EM improved: epochs 0 and 1 only.
    assert model.saved == [(path, 0), (path, 1)]
    assert callback.best == pytest.approx(200 / 3)
    assert callback.best_epoch == 1
    assert [h["improved"] for h in callback.history] == [
        True,
        True,
        False,
        False,
    ]
    assert callback.predictions == ["Lyon", "yen", "Europe"]
    # Batches of 2 over 3 examples: 2 generate calls per evaluation.
    assert [n for n, _ in model.calls] == [2, 1] * 4
    assert all(kwargs == {"max_length": 8} for _, kwargs in model.calls)
    printed = capsys.readouterr().out
    assert "Epoch 2: val_exact_match=66.67" in printed
    assert "saved to" in printed


def test_every_n_epochs_skips_epochs(capsys):
    model = FakeReader([["Paris", "JPY", "Americas"]] * 2)
    callback = GenerationEvaluationCallback(
        _examples(), every_n_epochs=2, verbose=0
    )
    logs = _run_epochs(callback, model, 4)
    assert ["val_exact_match" in log for log in logs] == [
        False,
        True,
        False,
        True,
    ]
    assert logs[1]["val_exact_match"] == 100.0
    assert [h["epoch"] for h in callback.history] == [1, 3]
    assert capsys.readouterr().out == ""


def test_monitor_f1_and_bytes_outputs():
    model = FakeReader(
        [
            ["Paris France", "x", "x"],  # F1 (2/3) / 3, EM 0
            ["Lyon", "x", "x"],  # F1 0, EM 0
        ],
        as_bytes=True,
    )
    callback = GenerationEvaluationCallback(
        _examples(), monitor="f1", verbose=0
    )
    logs = _run_epochs(callback, model, 2)
    assert logs[0]["val_f1"] == pytest.approx(100 * (2 / 3) / 3)
    assert callback.best_epoch == 0
    assert model.saved == []  # No checkpoint_path.


def test_evaluate_outside_training():
    model = FakeReader([["paris", "yen", "Americas"]])
    model.start_evaluation()
    callback = GenerationEvaluationCallback(_examples(), batch_size=8)
    result = callback.evaluate(model)
    assert result["count"] == 3
    assert result["exact_match"] == pytest.approx(200 / 3)


def test_wrong_number_of_answers_is_an_error():
    class Bad:
        def generate(self, inputs, **kwargs):
            return ["only one"]

    callback = GenerationEvaluationCallback(_examples(), batch_size=3)
    with pytest.raises(ValueError, match="one answer per example"):
        callback.evaluate(Bad())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"examples": []}, "non-empty list"),
        ({"examples": [{"answers": ["a"]}]}, r"examples\[0\].*question"),
        ({"examples": [{"question": "q"}]}, r"examples\[0\].*answers"),
        (
            {"examples": [{"question": "q", "answers": []}]},
            r"examples\[0\].*answers",
        ),
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"checkpoint_path": "best.h5"}, "weights.h5"),
        ({"monitor": "loss"}, "monitor"),
        ({"generate_kwargs": [1]}, "generate_kwargs"),
    ],
)
def test_argument_errors(kwargs, match):
    kwargs = {"examples": _examples(), **kwargs}
    with pytest.raises(ValueError, match=match):
        GenerationEvaluationCallback(**kwargs)


class TinyReader(keras.Model):
    """A real Keras model with a scripted `generate()`."""

    def __init__(self, answers_per_epoch):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.answers_per_epoch = answers_per_epoch
        self.generations = 0

    def call(self, x):
        return self.dense(x)

    def generate(self, inputs, **kwargs):
        answers = self.answers_per_epoch[self.generations]
        self.generations += 1
        return answers[: len(inputs)]


def test_callback_inside_fit(tmp_path):
    path = str(tmp_path / "best.weights.h5")
    model = TinyReader([["Paris", "yen", "Asia"], ["Paris", "JPY", "Americas"]])
    model.compile(optimizer="sgd", loss="mse")
    callback = GenerationEvaluationCallback(
        _examples(), batch_size=3, checkpoint_path=path, verbose=0
    )
    x = np.zeros((4, 2), "float32")
    y = np.zeros((4, 1), "float32")
    history = model.fit(
        x, y, epochs=2, batch_size=2, callbacks=[callback], verbose=0
    )
    assert history.history["val_exact_match"] == pytest.approx([100 / 3, 100.0])
    assert len(history.history["val_f1"]) == 2
    assert callback.best_epoch == 1
    assert os.path.exists(path)
    model.load_weights(path)
