"""Small helpers shared across keras_fido."""
