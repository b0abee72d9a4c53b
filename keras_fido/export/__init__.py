"""SavedModel export for TF Serving: strings in, answers out."""

from keras_fido.export.export_preset import export_preset
from keras_fido.export.export_saved_model import export_saved_model
from keras_fido.export.greedy_decode import greedy_decode

__all__ = ["export_preset", "export_saved_model", "greedy_decode"]
