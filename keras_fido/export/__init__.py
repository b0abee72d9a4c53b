"""Serving exports: a SavedModel for TF Serving, ONNX graphs for ONNX
Runtime."""

from keras_fido.export.export_onnx import export_onnx
from keras_fido.export.export_preset import export_preset
from keras_fido.export.export_saved_model import export_saved_model
from keras_fido.export.greedy_decode import greedy_decode

__all__ = [
    "export_onnx",
    "export_preset",
    "export_saved_model",
    "greedy_decode",
]
