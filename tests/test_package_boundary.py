"""`import keras_fido` loads no demo, benchmark or dataset package, and a
missing extra is named in a one-line error."""

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT, env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_import_keras_fido_loads_no_optional_package():
    # matplotlib is compared with what `import keras` alone loads (Keras
    # imports it when it is installed).
    new = run_python(
        """
        import sys
        import keras
        import keras_hub
        before = set(sys.modules)
        import keras_fido
        import keras_fido.models
        watched = ("matplotlib", "bm25s", "countryinfo",
                   "tensorflow_datasets")
        print(sorted(m for m in set(sys.modules) - before
                     if m.split(".")[0] in watched))
        """
    )
    assert new == "[]"


def test_core_works_without_the_extras():
    # The demo and benchmark packages made unimportable, as in a plain
    # `pip install keras-fido`.
    line = run_python(
        """
        import sys

        class Missing:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("bm25s", "countryinfo"):
                    raise ModuleNotFoundError(name=name)

        sys.meta_path.insert(0, Missing())
        import importlib.util
        importlib.util.find_spec = (
            lambda name, package=None, _f=importlib.util.find_spec:
            None if name in ("bm25s", "countryinfo") else _f(name, package)
        )
        import keras_fido
        from keras_fido.data import read_fid_examples
        from keras_fido.models import FiDOBackbone
        try:
            from keras_fido.data import build_country_qa
        except ImportError as error:
            print(error)
        """
    )
    assert 'pip install "keras-fido[demo]"' in line
    assert "bm25s" in line


@pytest.mark.parametrize("package", ["bm25s", "countryinfo", "matplotlib"])
def test_missing_extra_error_names_the_install(package):
    from keras_fido.utils.extras import EXTRAS
    from keras_fido.utils.extras import missing_extra_error

    message = str(missing_extra_error(package))
    assert "\n" not in message
    assert f'pip install "keras-fido[{EXTRAS[package]}]"' in message
    assert package in message
