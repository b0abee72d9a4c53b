"""A Keras callback that scores generated answers at the end of epochs."""

import math

import keras
import numpy as np

from keras_fido.metrics.qa_scores import evaluate_predictions
from keras_fido.training.gathered_weights import gathered_weights
from keras_fido.utils.atomic_write import atomic_file
from keras_fido.utils.checks import check_positive_int

_MONITORS = ("exact_match", "f1")


def _gold_answers(example, index):
    """Returns the gold answers of `examples[index]` as a list of str."""
    field = f"examples[{index}]"
    if not isinstance(example, dict):
        raise ValueError(
            f"`{field}` must be a FiD example dict. "
            f"Received: type {type(example).__name__}"
        )
    if not isinstance(example.get("question"), str):
        raise ValueError(
            f"`{field}` must have a string 'question'. Received: "
            f"keys {sorted(example.keys())}"
        )
    answers = example.get("answers")
    if answers is None and isinstance(example.get("target"), str):
        answers = [example["target"]]
    if (
        not isinstance(answers, (list, tuple))
        or not answers
        or not all(isinstance(a, str) for a in answers)
    ):
        raise ValueError(
            f"`{field}` must have 'answers', a non-empty list of strings (or "
            f"a string 'target'). Received: answers={answers!r}"
        )
    return list(answers)


def _to_strings(outputs, expected):
    """Turns what `generate()` returned into a list of python strings."""
    if hasattr(outputs, "numpy"):
        outputs = outputs.numpy()
    if isinstance(outputs, (str, bytes)):
        outputs = [outputs]
    outputs = np.asarray(outputs, dtype=object).reshape(-1).tolist()
    strings = [
        o.decode("utf-8") if isinstance(o, bytes) else str(o) for o in outputs
    ]
    if len(strings) != expected:
        raise ValueError(
            f"`model.generate()` must return one answer per example. "
            f"Received: {len(strings)} answers for {expected} examples"
        )
    return strings


class GenerationEvaluationCallback(keras.callbacks.Callback):
    """Scores generated answers (exact match and F1) while training.

    At the end of every `every_n_epochs`-th epoch, the callback runs
    `self.model.generate()` on `examples` in batches of `batch_size`,
    compares the generated strings with each example's gold `"answers"`
    (`exact_match` and `f1_score`, SQuAD normalization) and:

    - writes `val_exact_match` and `val_f1` (both in `[0, 100]`) into the
      epoch's `logs`, so `History`, `CSVLogger`, `EarlyStopping` or a later
      `ModelCheckpoint` can use them. Put this callback *before* those in
      the `callbacks` list, since Keras runs callbacks in order;
    - prints one line, e.g. `Epoch 3: val_exact_match=41.00 val_f1=48.52
      (200 examples, best exact_match 41.00 at epoch 3)`, unless
      `verbose=0`;
    - when the `monitor` metric is strictly better than every earlier
      evaluation (the first evaluation always is), records it in `best` and
      `best_epoch` and, if `checkpoint_path` is given, saves the model
      weights there with `model.save_weights()`, overwriting the file.

    The best value is kept across several `fit()` calls, like
    `keras.callbacks.ModelCheckpoint`. Epochs that are skipped add nothing to
    `logs`. Generation uses the model's compiled sampler (greedy unless set
    otherwise with `compile(sampler=...)`).

    Args:
        examples: list of FiD example dicts,
            `{"question": str, "ctxs" (or "passages"): [{"title", "text"}],
            "answers": [str]}`; `"target"` stands in for `"answers"` when
            they are missing. The whole dict is passed to
            `model.generate()`, so the model needs a preprocessor.
        every_n_epochs: int. Evaluate after epochs `n - 1, 2n - 1, ...`
            (0-based), i.e. every `n`-th epoch. Defaults to `1`.
        batch_size: int. Examples per `generate()` call. Defaults to `8`.
        checkpoint_path: str or `None`. Where to save the best weights; must
            end in `.weights.h5`. Defaults to `None` (no saving).
        monitor: `"exact_match"` or `"f1"`. The metric that decides which
            epoch is best. Defaults to `"exact_match"`.
        generate_kwargs: dict or `None`. Extra keyword arguments for
            `model.generate()`, e.g. `{"max_length": 16}`.
        verbose: int. `0` silences the printed line. Defaults to `1`.

    Attributes:
        best: float or `None`. Best `monitor` value so far, in `[0, 100]`.
        best_epoch: int or `None`. The (0-based) epoch that reached `best`.
        history: list of dicts, one per evaluation: `{"epoch",
            "exact_match", "f1", "count", "improved"}`.
        predictions: list of str. The answers of the last evaluation.

    Examples:
    ```python
    callback = keras_fido.metrics.GenerationEvaluationCallback(
        validation_examples,
        batch_size=16,
        checkpoint_path="best.weights.h5",
        generate_kwargs={"max_length": 16},
    )
    history = reader.fit(train_ds, epochs=10, callbacks=[callback])
    history.history["val_exact_match"]
    reader.load_weights("best.weights.h5")

    # The same evaluation, outside of training.
    callback.evaluate(reader)  # {"exact_match": ..., "f1": ..., "count": ...}
    ```
    """

    def __init__(
        self,
        examples,
        every_n_epochs=1,
        batch_size=8,
        checkpoint_path=None,
        monitor="exact_match",
        generate_kwargs=None,
        verbose=1,
    ):
        super().__init__()
        if not isinstance(examples, (list, tuple)) or not examples:
            raise ValueError(
                "`examples` must be a non-empty list of FiD example dicts. "
                f"Received: {type(examples).__name__}"
                + (
                    " of length 0"
                    if isinstance(examples, (list, tuple))
                    else ""
                )
            )
        self.examples = list(examples)
        self.answers = [
            _gold_answers(example, i) for i, example in enumerate(examples)
        ]
        self.every_n_epochs = check_positive_int(
            "every_n_epochs", every_n_epochs
        )
        self.batch_size = check_positive_int("batch_size", batch_size)
        if checkpoint_path is not None and (
            not isinstance(checkpoint_path, str)
            or not checkpoint_path.endswith(".weights.h5")
        ):
            raise ValueError(
                "`checkpoint_path` must be None or a path ending in "
                f"'.weights.h5'. Received: checkpoint_path={checkpoint_path!r}"
            )
        self.checkpoint_path = checkpoint_path
        if monitor not in _MONITORS:
            raise ValueError(
                f"`monitor` must be one of {_MONITORS}. "
                f"Received: monitor={monitor!r}"
            )
        self.monitor = monitor
        if generate_kwargs is not None and not isinstance(
            generate_kwargs, dict
        ):
            raise ValueError(
                "`generate_kwargs` must be None or a dict. "
                f"Received: type {type(generate_kwargs).__name__}"
            )
        self.generate_kwargs = dict(generate_kwargs or {})
        self.verbose = verbose
        self.best = None
        self.best_epoch = None
        self.history = []
        self.predictions = None

    def _save_best(self):
        if not isinstance(self.model, keras.Model):
            # Any object with `save_weights` (a wrapper, a test double).
            self.model.save_weights(self.checkpoint_path)
            return
        # Atomically: a kill mid-save keeps the previous best file. Weights
        # sharded over several processes are gathered first (a collective:
        # every process evaluates and saves alike).
        with (
            atomic_file(self.checkpoint_path) as temporary,
            gathered_weights(self.model),
        ):
            self.model.save_weights(temporary)

    def predict(self, model=None):
        """Generates an answer for every example.

        Args:
            model: The model to call `generate()` on. Defaults to the model
                the callback is attached to.

        Returns:
            A list of str, one answer per example.
        """
        model = self.model if model is None else model
        predictions = []
        for start in range(0, len(self.examples), self.batch_size):
            batch = self.examples[start : start + self.batch_size]
            outputs = model.generate(batch, **self.generate_kwargs)
            predictions.extend(_to_strings(outputs, len(batch)))
        return predictions

    def evaluate(self, model=None):
        """Generates answers and scores them against the gold answers.

        Args:
            model: The model to evaluate. Defaults to the model the callback
                is attached to.

        Returns:
            A dict `{"exact_match": float, "f1": float, "count": int}`, the
            means in `[0, 100]`. The answers are kept in `predictions`.
        """
        self.predictions = self.predict(model)
        return evaluate_predictions(self.predictions, self.answers)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs != 0:
            return
        metrics = self.evaluate()
        if logs is not None:
            logs["val_exact_match"] = metrics["exact_match"]
            logs["val_f1"] = metrics["f1"]
        value = metrics[self.monitor]
        improved = self.best is None or (
            not math.isnan(value) and value > self.best
        )
        if improved:
            self.best = value
            self.best_epoch = epoch
            if self.checkpoint_path is not None:
                self._save_best()
        self.history.append(
            {
                "epoch": epoch,
                "exact_match": metrics["exact_match"],
                "f1": metrics["f1"],
                "count": metrics["count"],
                "improved": improved,
            }
        )
        if self.verbose:
            saved = (
                f", saved to {self.checkpoint_path}"
                if improved and self.checkpoint_path is not None
                else ""
            )
            print(
                f"Epoch {epoch + 1}: val_exact_match="
                f"{metrics['exact_match']:.2f} val_f1={metrics['f1']:.2f} "
                f"({metrics['count']} examples, best {self.monitor} "
                f"{self.best:.2f} at epoch {self.best_epoch + 1}{saved})"
            )
