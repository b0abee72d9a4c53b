"""Answer metrics for open-domain QA: exact match, F1, answer recall."""

from keras_fido.metrics.answer_normalization import normalize_answer
from keras_fido.metrics.answer_recall import has_answer
from keras_fido.metrics.generation_evaluation_callback import (
    GenerationEvaluationCallback,
)
from keras_fido.metrics.qa_scores import evaluate_predictions
from keras_fido.metrics.qa_scores import exact_match
from keras_fido.metrics.qa_scores import f1_score

__all__ = [
    "GenerationEvaluationCallback",
    "evaluate_predictions",
    "exact_match",
    "f1_score",
    "has_answer",
    "normalize_answer",
]
