"""Helpers shared by keras_fido's tests (tiny references, random inputs)."""
