"""Wall-clock timing with compile time kept apart."""

import statistics
import time


def time_calls(fn, repeats=5, warmup=1):
    """Times `fn()`: first call (compile + run), warm-up, then `repeats`.

    `fn` must block until its result is ready (return host values).

    Returns a dict with `compile_s` (first call minus the median run),
    `median_s`, `min_s`, `max_s` and every run in `runs_s`.
    """
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    median = statistics.median(runs)
    return {
        "compile_s": max(first - median, 0.0),
        "median_s": median,
        "min_s": min(runs),
        "max_s": max(runs),
        "runs_s": runs,
    }
