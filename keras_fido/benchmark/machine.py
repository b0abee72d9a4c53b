"""Where a benchmark figure comes from: CPU, memory, backend, versions."""

import importlib.metadata
import os
import platform

import keras

_BACKEND_PACKAGES = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (or `platform`)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_total_bytes():
    """Physical memory from /proc/meminfo, or None where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return 1024 * int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_info():
    """Where the figures come from: CPU, memory, backend and versions."""
    backend = keras.config.backend()
    info = {
        "backend": backend,
        "keras": keras.__version__,
        "keras_hub": _version("keras-hub"),
        "backend_version": _version(_BACKEND_PACKAGES.get(backend, backend)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": memory_total_bytes(),
        # Backend compiler settings change kernel choices, so they are part
        # of where a figure comes from.
        "xla_flags": os.environ.get("XLA_FLAGS") or None,
    }
    if backend == "jax":
        import jax

        info["devices"] = [str(d) for d in jax.devices()]
    elif backend == "torch":
        import torch

        info["devices"] = (
            [
                torch.cuda.get_device_name(i)
                for i in range(torch.cuda.device_count())
            ]
            if torch.cuda.is_available()
            else ["cpu"]
        )
        info["torch_threads"] = torch.get_num_threads()
    elif backend == "tensorflow":
        import tensorflow as tf

        info["devices"] = [d.name for d in tf.config.list_logical_devices()]
    return info
