"""Analytic cost model of FiDO: FLOPs, operational intensity, cache memory."""

from keras_fido.analysis.cache_memory import bytes_per_element
from keras_fido.analysis.cache_memory import (
    cross_attention_cache_bytes_per_sample,
)
from keras_fido.analysis.cache_memory import (
    self_attention_cache_bytes_per_sample,
)
from keras_fido.analysis.flops import encoder_flops_per_query
from keras_fido.analysis.flops import flops_per_sample
from keras_fido.analysis.flops import paper_flops_approximation
from keras_fido.analysis.operational_intensity import decoding_step_costs
from keras_fido.analysis.operational_intensity import (
    inverse_operational_intensity,
)
from keras_fido.analysis.parameters import parameter_count
from keras_fido.analysis.summary import summary

__all__ = [
    "bytes_per_element",
    "cross_attention_cache_bytes_per_sample",
    "decoding_step_costs",
    "encoder_flops_per_query",
    "flops_per_sample",
    "inverse_operational_intensity",
    "paper_flops_approximation",
    "parameter_count",
    "self_attention_cache_bytes_per_sample",
    "summary",
]
