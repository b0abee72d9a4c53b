"""Imports a script of the repository's `recipes/` folder, for tests."""

import importlib.util
import os

RECIPES = os.path.join(os.path.dirname(__file__), "..", "..", "recipes")


def load_recipe(name):
    """The module `recipes/<name>.py` (recipes are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(RECIPES, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
