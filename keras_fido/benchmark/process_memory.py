"""This process's memory as the kernel and the backends report it."""

import sys


def proc_status_kib(field):
    """A `/proc/self/status` field in KiB, or None where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def max_rss_bytes():
    """Peak RSS of this process from `getrusage` (KiB on Linux)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else 1024 * peak


def reset_peak_rss():
    """Resets the kernel's peak-RSS counter; False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def device_peak_bytes():
    """Peak device memory of a GPU backend, or None on a CPU."""
    import keras

    backend = keras.config.backend()
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform == "cpu":
                return None
            return int(device.memory_stats()["peak_bytes_in_use"])
        if backend == "torch":
            import torch

            if not torch.cuda.is_available():
                return None
            return int(torch.cuda.max_memory_allocated())
        if backend == "tensorflow":
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                return None
            return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    except Exception:  # Stats are optional; fall back to RSS.
        return None
    return None


def available_memory_bytes():
    """`MemAvailable` from /proc/meminfo, or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return 1024 * int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None
