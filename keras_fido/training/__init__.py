"""Training: the FiDO optimizer, T5's learning-rate schedule, resumable
span-corruption pretraining, the copy head for readers trained without
it, a reader's passage-memory (LUMEN) form."""

from keras_fido.training.adafactor_adam import AdafactorAdam
from keras_fido.training.copy_head import with_copy_head
from keras_fido.training.distribution import distribution_context
from keras_fido.training.optimizer import fine_tuning_optimizer
from keras_fido.training.optimizer import pretraining_optimizer
from keras_fido.training.passage_memory_reader import with_passage_memory
from keras_fido.training.span_corruption_pretraining import (
    pretrain_span_corruption,
)
from keras_fido.training.t5_schedule import InverseSquareRootSchedule

__all__ = [
    "AdafactorAdam",
    "InverseSquareRootSchedule",
    "distribution_context",
    "fine_tuning_optimizer",
    "pretrain_span_corruption",
    "pretraining_optimizer",
    "with_copy_head",
    "with_passage_memory",
]
