"""Calls an exported reader from a bare TensorFlow process.

    python bare_tensorflow_client.py SAVED_MODEL_DIR REQUESTS_JSON OUT_JSON

The process has what a TF Serving binary has: TensorFlow and the
SentencePiece op library of tensorflow-text. keras, keras_hub and
keras_fido cannot be imported (they are blocked, so TensorFlow runs as if
they were not installed), and the tensorflow-text Python package is not
imported either: its SentencePiece kernels are loaded with
`tf.load_op_library`.

Each request is `{"signature": name, "inputs": {name: {"value": nested
lists, "dtype": "string" | "int32"}}}`. The output file holds one response
per request, either `{"outputs": {name: nested lists}}` or `{"error":
{"type", "message"}}`; `"inputs"`, each signature's input names in the
order TensorFlow numbers them in errors; and `"modules"`, the blocked
packages found in `sys.modules` (none).

A request with `"threads": n, "calls": m` is then also sent from n Python
threads m times each, as a server sends it; its response gains
`"concurrent"`: the answers that differ from the sequential one, the
errors, and the resident memory after a tenth of the calls and at the end.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys

BLOCKED = ("keras", "keras_hub", "keras_fido", "tensorflow_text")


class _Absent(importlib.abc.Loader):
    def create_module(self, spec):
        raise ImportError(f"{spec.name} is not available on this server")

    def exec_module(self, module):  # pragma: no cover - never reached
        pass


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, _Absent())
        return None


def _sentencepiece_op_library():
    # Located without importing (or executing) the tensorflow_text package.
    finder = importlib.machinery.PathFinder
    spec = finder.find_spec("tensorflow_text")
    root = spec.submodule_search_locations[0]
    return os.path.join(root, "python", "ops", "_sentencepiece_tokenizer.so")


def _utf8(value):
    return value.decode("utf-8")


def _respond(fn, inputs):
    import numpy as np
    import tensorflow as tf

    try:
        outputs = fn(**inputs)
    except Exception as error:  # noqa: BLE001 - reported to the test
        return {"error": {"type": type(error).__name__, "message": str(error)}}
    return {
        "outputs": {
            name: (
                np.vectorize(_utf8, otypes=[object])(value.numpy())
                if value.dtype == tf.string
                else value.numpy()
            ).tolist()
            for name, value in outputs.items()
        }
    }


def _resident_mib():
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _concurrent(fn, inputs, expected, threads, calls):
    """`threads` Python threads call `fn` `calls` times each, as a server
    would: how many answers differ from the sequential one, the errors,
    and the resident memory after the first tenth of the calls and at the
    end (MiB)."""
    import threading

    mismatches, errors, rss = [], [], []
    start = threading.Barrier(threads)
    warm = threading.Barrier(threads)

    def work(thread):
        start.wait()
        for call in range(calls):
            if call == calls // 10:
                if warm.wait() == 0:
                    rss.append(_resident_mib())
            response = _respond(fn, inputs)
            if "error" in response:
                errors.append((thread, response["error"]["message"]))
            elif response["outputs"] != expected["outputs"]:
                mismatches.append((thread, call))

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    rss.append(_resident_mib())
    return {"mismatches": len(mismatches), "errors": errors, "rss_mib": rss}


def main(saved_model_dir, requests_path, out_path):
    library = _sentencepiece_op_library()
    sys.meta_path.insert(0, _Blocker())
    import numpy as np
    import tensorflow as tf

    tf.load_op_library(library)
    loaded = tf.saved_model.load(saved_model_dir)
    with open(requests_path) as file:
        requests = json.load(file)

    responses = []
    for request in requests:
        inputs = {
            name: tf.constant(
                np.array(spec["value"], dtype=object)
                if spec["dtype"] == "string"
                else np.array(spec["value"], dtype=spec["dtype"])
            )
            for name, spec in request["inputs"].items()
        }
        fn = loaded.signatures[request["signature"]]
        response = _respond(fn, inputs)
        if "threads" in request and "outputs" in response:
            response["concurrent"] = _concurrent(
                fn, inputs, response, request["threads"], request["calls"]
            )
        responses.append(response)
    inputs = {
        name: [
            t.name.split(":")[0] for t in fn.inputs if t.dtype != tf.resource
        ]
        for name, fn in loaded.signatures.items()
    }
    modules = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    with open(out_path, "w") as file:
        json.dump(
            {"responses": responses, "inputs": inputs, "modules": modules},
            file,
        )


if __name__ == "__main__":
    main(*sys.argv[1:4])
