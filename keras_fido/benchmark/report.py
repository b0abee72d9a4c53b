"""Markdown tables, matplotlib figures and the performance document."""

import os

from keras_fido.benchmark.tables import SWEEP_LABELS
from keras_fido.benchmark.tables import beam_table
from keras_fido.benchmark.tables import markdown_table
from keras_fido.benchmark.tables import memory_table
from keras_fido.benchmark.tables import passage_memory_table
from keras_fido.benchmark.tables import peer_table
from keras_fido.benchmark.tables import quantized_table
from keras_fido.benchmark.tables import ratio_lines
from keras_fido.benchmark.tables import roofline_table
from keras_fido.benchmark.tables import sweep_table
from keras_fido.benchmark.tables import sweep_time as _sweep_time
from keras_fido.utils.extras import import_optional


def _pyplot():
    matplotlib = import_optional("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def matplotlib_ticker():
    import_optional("matplotlib")
    import matplotlib.ticker

    return matplotlib.ticker


def plot_stacked(records, path):
    """Stacked encoder/decoder time per sample for each variant."""
    plt = _pyplot()

    names = [r["variant"] for r in records]
    encoder = [r["encoder_ms_per_sample"] or 0.0 for r in records]
    decoder = [r["decoder_ms_per_sample"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(names, encoder, label="encoder", color="#4c72b0")
    ax.bar(names, decoder, bottom=encoder, label="decoder", color="#dd8452")
    setting = records[0]["setting"]
    ax.set_ylabel("ms per sample")
    ax.set_title(
        f"{records[0]['size']}, B={setting['batch_size']}, "
        f"P={setting['passages']}, L={setting['passage_length']}, "
        f"T={setting['output_length']} ({records[0]['machine']['backend']})"
    )
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sweep(sweep, parameter, path):
    """Time per sample against one setting, a line per variant.

    `sweep` maps a parameter value to that run's list of records. Solid
    lines are total time (decoder time in decoder-only runs); when the
    encoder was timed, dashed lines of the same colour are the decoder.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    values = sorted(sweep)
    variants = [r["variant"] for r in sweep[values[0]]]
    for variant in variants:
        rows = [
            next(r for r in sweep[value] if r["variant"] == variant)
            for value in values
        ]
        (line,) = ax.plot(
            values, [_sweep_time(r) for r in rows], marker="o", label=variant
        )
        if all(r["encoder_ms_per_sample"] is not None for r in rows):
            ax.plot(
                values,
                [r["decoder_ms_per_sample"] for r in rows],
                linestyle="--",
                color=line.get_color(),
            )
    first = sweep[values[0]][0]
    decoder_only = first["setting"]["decoder_only"]
    ax.set_xlabel(SWEEP_LABELS.get(parameter, parameter))
    ax.set_ylabel(
        "decoder ms per sample"
        if decoder_only
        else "ms per sample (dashed: decoder)"
    )
    if parameter in ("passages", "batch_size", "output_length"):
        ax.set_xscale("log", base=2)
        ax.set_xticks(values, [str(v) for v in values])
    ax.set_yscale("log")
    plain = matplotlib_ticker().FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_title(
        f"{first['size']}, {first['machine']['backend']}: time per sample "
        f"vs {parameter}"
    )
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _command(result):
    """The recorded command, with the backend it ran on in front."""
    command = result.get("command")
    if command is None:
        return "(command not recorded)"
    backend = result.get("machine", {}).get("backend")
    return f"KERAS_BACKEND={backend} {command}" if backend else command


def _setting_line(setting, timed=True):
    shape = (
        f"{setting['passages']} passages x {setting['passage_length']} "
        f"tokens, {setting['output_length']} decoding steps (all forced), "
        f"{setting['dtype']}"
    )
    decoder_only = setting["decoder_only"]
    if not timed:
        return (
            f"Size {setting['size']}, {shape}"
            + (", decoder only (random encoder states)" if decoder_only else "")
            + "."
        )
    return (
        f"Size {setting['size']}, batch {setting['batch_size']}, {shape}, "
        f"median of {setting['repeats']} runs after a warm-up, compilation "
        "excluded"
        + (", decoder only (random encoder states)" if decoder_only else "")
        + "."
    )


def _image(path, image_root, alt):
    if image_root is not None:
        path = os.path.relpath(os.path.abspath(path), image_root)
    return f"![{alt}]({path})"


def markdown_report(result, image_root=None, heading="##"):
    """Every table of one run's result, with its plots embedded.

    Args:
        result: dict. What `__main__.run` returns (and writes as JSON).
        image_root: str. Folder the markdown is written to; image links are
            made relative to it. `None` keeps the paths as recorded.
        heading: str. Markdown heading prefix of the sections.

    Returns:
        A markdown string.
    """
    parts = [
        "`" + _command(result) + "`",
        "",
        _setting_line(result["setting"], timed=bool(result.get("records"))),
    ]
    xla_flags = result.get("machine", {}).get("xla_flags")
    if xla_flags:
        parts += ["", f"Run with `XLA_FLAGS={xla_flags}`."]
    plots = result.get("plots", {})
    records = result.get("records")
    sub = heading + "#"
    if records:
        parts += _ladder_section(records, plots, image_root, sub)
    if result.get("roofline") and records:
        parts += _roofline_section(records, result["roofline"], sub)
    if result.get("peer"):
        parts += _peer_section(result["peer"], sub)
    if records and any(r.get("quantized") for r in records):
        parts += _quantized_section(records, sub)
    if records and any(r["config"].get("encoder_live_layers") for r in records):
        parts += _passage_memory_section(records, sub)
    if records and any(r.get("beam_search") for r in records):
        parts += ["", f"{sub} Beam search at batch size 1", ""]
        parts += [beam_table(records)]
    for parameter, sweep in result.get("sweeps", {}).items():
        parts += _sweep_section(parameter, sweep, plots, image_root, sub)
    if result.get("memory"):
        parts += _memory_section(result["memory"], sub)
    return "\n".join(parts)


def _ladder_section(records, plots, image_root, sub):
    parts = [
        "",
        f"{sub} Time per sample along the ladder",
        "",
        markdown_table(records),
    ]
    ratios = ratio_lines(records)
    if ratios:
        parts += [""] + [f"- {line}" for line in ratios]
    if "time_per_sample" in plots:
        parts += [
            "",
            _image(plots["time_per_sample"], image_root, "time per sample"),
        ]
    return parts


def _roofline_section(records, machine, sub):
    return [
        "",
        f"{sub} Against the roofline",
        "",
        "Bounds from `keras_fido.analysis`: encoder FLOPs at peak "
        "FLOP/s; a decoder step's bytes at the read bandwidth or its "
        "FLOPs at peak FLOP/s, whichever is larger, plus the one-off "
        "cross-attention K/V projection spread over the steps. The "
        "last two columns put the step's bytes through the rate the "
        "backend's own small-batch matmul reaches instead.",
        "",
        roofline_table(records, machine),
    ]


def _peer_section(peer, sub):
    if peer["library"] == "onnxruntime":
        how = (
            f"ONNX Runtime {peer['onnxruntime']} running transformers "
            f"{peer['transformers']}'s T5 exported by `torch.onnx` (torch "
            f"{peer['torch']}): an encoder graph, the cross-attention K/V "
            "of every layer once per request and a cached decoder step, "
            "states kept in ONNX Runtime between steps (IO binding), "
            f"{peer['threads']} threads, FiD-style (passages encoded "
            "apart, states concatenated), greedy, all steps forced."
        )
    else:
        how = (
            f"{peer['library']} {peer['transformers']}, torch "
            f"{peer['torch']}, {peer['threads']} threads, FiD-style "
            "(passages encoded apart, states concatenated, greedy "
            "`generate` with its cache, all steps forced, "
            "`torch.inference_mode`)."
        )
    lines = [
        "",
        f"{sub} Against {peer['library']} (vanilla FiD, same size)",
        "",
        how + " Above 1, keras_fido is slower.",
        "",
        peer_table(peer),
    ]
    quantized = peer.get("quantized")
    if quantized and quantized.get("ratios"):
        lines += [
            "",
            f"Both quantized ({quantized['mode']}):",
            "",
            peer_table(
                dict(
                    quantized,
                    library=f"{peer['library']} {quantized['mode']}",
                    keras_fido=quantized.get("keras_fido", {}),
                )
            ),
        ]
    return lines


def _passage_memory_section(records, sub):
    from keras_fido.memory.store_size import wikipedia_size_table

    return [
        "",
        f"{sub} Passage memory (LUMEN)",
        "",
        "Encoder work per query: the live layers over every passage "
        "sequence and the memory layers over the question block, against "
        "every layer over every sequence. A `lsa_mq_live_*` variant's "
        "encoder time starts from passage memory in RAM; its store "
        "(float16, the embedded task's passages, `keras_fido.memory`) "
        "is read apart, from the page cache, and its one-off build is "
        "per passage.",
        "",
        passage_memory_table(records),
        "",
        "A store at FiD's Wikipedia scale (21M passages read as 256 "
        "tokens, of which the `lumen_*` presets store the 224 after their "
        "32-token question block), from "
        "`keras_fido.memory.wikipedia_size_table(passage_tokens=224)`:",
        "",
        wikipedia_size_table(passage_tokens=224),
    ]


def _quantized_section(records, sub):
    onnx = any(r.get("engine") == "onnxruntime" for r in records)
    how = (
        "the exported graphs quantized by ONNX Runtime (int8 weights)"
        if onnx
        else "`keras.Model.quantize`"
    )
    note = (
        ""
        if onnx
        else " keras-hub's `ReversibleEmbedding` (token embedding and "
        "output projection) cannot be quantized and stays float."
    )
    return [
        "",
        f"{sub} Quantized ({how})",
        "",
        "Agreement with the float model's greedy tokens: generated "
        "(free running, a difference changes later prefixes) and "
        "next-token (the quantized decoder fed the float tokens). The "
        "weights are random, so logit margins are small and agreement "
        "is a lower bound on that of a trained model." + note,
        "",
        quantized_table(records),
    ]


def _sweep_section(parameter, sweep, plots, image_root, sub):
    by_value = {int(k): v for k, v in sweep["records"].items()}
    parts = [
        "",
        f"{sub} Time per sample against {SWEEP_LABELS[parameter]}",
        "",
        sweep_table(by_value, parameter),
    ]
    if f"sweep_{parameter}" in plots:
        parts += [
            "",
            _image(
                plots[f"sweep_{parameter}"],
                image_root,
                f"time per sample against {parameter}",
            ),
        ]
    return parts


def _memory_section(memory, sub):
    return [
        "",
        f"{sub} Largest batch within {memory['budget_gib']:g} GiB",
        "",
        f"Method: {memory['method']}; each batch measured in its own "
        f"process (`generate` once, compilation included); doubling "
        f"then bisection, capped at {memory['cap']}, "
        f"{memory['timeout_s']:g} s per measurement.",
        "",
        memory_table(memory),
    ]


def machine_lines(machine):
    """A short description of the machine and software versions."""

    def get(key):
        value = machine.get(key)
        return "(not recorded)" if value is None else value

    memory = machine.get("memory_bytes")
    return [
        f"- CPU: {get('cpu_model')}, {get('cpu_count')} cores"
        + (f", {memory / 2**30:.0f} GiB memory" if memory else ""),
        f"- Devices: {', '.join(machine.get('devices', [])) or '-'}",
        f"- Backend: {machine['backend']} {get('backend_version')}, "
        f"keras {get('keras')}, keras-hub {get('keras_hub')}, "
        f"Python {get('python')}",
        f"- Platform: {get('platform')}",
    ]


def performance_doc(results, path):
    """The performance document (`docs/performance.md`) for some runs.

    Args:
        results: list of run results (`__main__.run`'s return value or
            its JSON), one section each.
        path: str. Where the markdown goes (image links are relative to
            its folder).

    Returns:
        The markdown string, also written to `path`.
    """
    root = os.path.dirname(os.path.abspath(path))
    results = [_complete(result) for result in results]
    parts = [
        "# keras_fido performance",
        "",
        "Generated by `python -m keras_fido.benchmark --docs` from the runs "
        "below; every figure is measured by the command above its section "
        "(`tools/benchmark.py` takes the same options). Random weights: "
        "speed and memory do not depend on their values.",
    ]
    machines = []
    for result in results:
        # Compiler flags are shown with their run, not as another machine.
        machine = {
            k: v for k, v in result["machine"].items() if k != "xla_flags"
        }
        if machine not in machines:
            machines.append(machine)
    parts += ["", "## Machine", ""]
    for machine in machines:
        parts += machine_lines(machine)
    if not any(_has_accelerator(machine) for machine in machines):
        parts += [
            "",
            "Every run below is on CPU; no accelerator figure is recorded. "
            "`bash tools/gpu_benchmark.sh` records the paper's accelerator "
            "setting (JAX, bf16, B=24, P=40, L=256, T=32) on one GPU into "
            "`docs/benchmarks/`.",
        ]
    for index, result in enumerate(results, 1):
        parts += [
            "",
            f"## Run {index}: {result.get('title') or _title(result)}",
            "",
            markdown_report(result, image_root=root, heading="##"),
        ]
    text = "\n".join(parts) + "\n"
    os.makedirs(root, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return text


def _has_accelerator(machine):
    """Whether a run's machine listed a device other than the CPU."""
    devices = machine.get("devices") or []
    # JAX "cpu:0", torch "cpu", TensorFlow "/device:CPU:0".
    names = [str(d).lower().rsplit("device:", 1)[-1] for d in devices]
    return any(not name.startswith("cpu") for name in names)


def _complete(result):
    """Fills the run-level keys of JSON written before they existed (only
    `records`), from the first record."""
    if "machine" in result and "setting" in result:
        return result
    first = result["records"][0]
    return {
        "command": "(command not recorded)",
        "setting": dict(first["setting"], size=first["size"]),
        "machine": first["machine"],
        **result,
    }


def _title(result):
    modes = []
    if result.get("memory"):
        modes.append("memory")
    if result.get("records"):
        modes.append(
            "decoder time" if result["setting"]["decoder_only"] else "time"
        )
    if result.get("peer"):
        modes.append("peer")
    if result.get("roofline"):
        modes.append("roofline")
    if result.get("sweeps"):
        modes.append("sweeps")
    s = result["setting"]
    return (
        f"{', '.join(modes)} ({s['size']}, B={s['batch_size']}, "
        f"P={s['passages']}, L={s['passage_length']}, "
        f"T={s['output_length']}, {result['machine']['backend']})"
    )
