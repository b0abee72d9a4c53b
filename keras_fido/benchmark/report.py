"""Markdown tables, matplotlib figures and the performance document."""

import os

from keras_fido.utils.extras import import_optional


def _fmt(value, digits=2):
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def markdown_table(records):
    """One row per record: time per sample and cache size."""
    lines = [
        "| variant | batch | passages x length | encoder ms/sample | "
        "decoder ms/sample | total ms/sample | decoder ms/step | "
        "cross-attn cache MiB/sample |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        s = r["setting"]
        lines.append(
            f"| {r['variant']} | {s['batch_size']} | "
            f"{s['passages']} x {s['passage_length']} | "
            f"{_fmt(r['encoder_ms_per_sample'])} | "
            f"{_fmt(r['decoder_ms_per_sample'])} | "
            f"{_fmt(r['total_ms_per_sample'])} | "
            f"{_fmt(r['decoder_ms_per_step'], 3)} | "
            f"{r['cross_attention_cache_bytes_per_sample'] / 2**20:.2f} |"
        )
    return "\n".join(lines)


def ratio_lines(records, baseline="fid"):
    """Speed and cache ratios of every variant against `baseline`."""
    base = next((r for r in records if r["variant"] == baseline), None)
    if base is None:
        return []
    lines = []
    for r in records:
        if r is base:
            continue
        parts = [f"{baseline} / {r['variant']}:"]
        for key in ("decoder_ms_per_sample", "total_ms_per_sample"):
            if base[key] and r[key]:
                parts.append(f"{key.split('_ms')[0]} {base[key] / r[key]:.1f}x")
        cache = "cross_attention_cache_bytes_per_sample"
        parts.append(f"cache {base[cache] / r[cache]:.1f}x smaller")
        lines.append(" ".join(parts))
    return lines


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


SWEEP_LABELS = {
    "passages": "passages per sample",
    "output_length": "output length (decoding steps)",
    "batch_size": "batch size",
}


def _sweep_time(record):
    """Total time per sample, or the decoder's in decoder-only runs."""
    return record["total_ms_per_sample"] or record["decoder_ms_per_sample"]


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


def sweep_table(sweep, parameter):
    """Time per sample (ms) for each sweep value (rows) and variant."""
    values = sorted(sweep)
    variants = [r["variant"] for r in sweep[values[0]]]
    lines = [
        f"| {parameter} | " + " | ".join(variants) + " |",
        "|---|" + "---|" * len(variants),
    ]
    for value in values:
        cells = []
        for variant in variants:
            r = next(r for r in sweep[value] if r["variant"] == variant)
            cells.append(_fmt(_sweep_time(r)))
        lines.append(f"| {value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ratio_text(value):
    return "-" if value is None else f"{value:.2f}"


def roofline_table(records, machine):
    """Measured time against the roofline lower bounds, per variant."""
    rates = [
        f"{machine['peak_flops_per_s'] / 1e9:.1f} GFLOP/s "
        f"(float32 {machine['matmul']['size']}^3 matmul)",
        f"{machine['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s read "
        f"(sum over {machine.get('read', machine.get('copy', {})).get('mib')}"
        " MiB)",
    ]
    if machine.get("copy", {}).get("bytes_per_s"):
        rates.append(
            f"{machine['copy']['bytes_per_s'] / 1e9:.1f} GB/s copy "
            "(read + written)"
        )
    matvec = machine.get("matvec")
    if matvec:
        rates.append(
            f"{matvec['bytes_per_s'] / 1e9:.1f} GB/s of kernels streamed by "
            f"a {matvec['batch_size']}-row matmul "
            f"({matvec['rows']}x{matvec['columns']} kernels)"
        )
    lines = [
        f"Machine ({machine['backend']}): " + "; ".join(rates) + ".",
        "",
        "| variant | encoder ms/sample | encoder bound | measured / bound | "
        "decoder ms/step/sample | decoder step bound | measured / bound | "
        "step bound by | step bound at the matmul rate | measured / that |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        b = r.get("roofline")
        if not b:
            continue
        lines.append(
            f"| {r['variant']} | {_fmt(r['encoder_ms_per_sample'])} | "
            f"{_fmt(b['encoder_bound_ms_per_sample'], 3)} | "
            f"{_ratio_text(b['encoder_measured_over_bound'])} | "
            f"{_fmt(b['decoder_step_measured_ms_per_sample'], 3)} | "
            f"{_fmt(b['decoder_step_bound_ms_per_sample'], 4)} | "
            f"{_ratio_text(b['decoder_step_measured_over_bound'])} | "
            f"{b['decoder_step_bound_by']} | "
            f"{_fmt(b.get('decoder_step_matvec_bound_ms_per_sample'), 4)} | "
            f"{_ratio_text(b.get('decoder_step_measured_over_matvec_bound'))} |"
        )
    return "\n".join(lines)


def peer_table(peer):
    """keras_fido's vanilla FiD against the peer library, per component."""
    name = peer["library"]
    lines = [
        f"| component | keras_fido ms/sample | {name} ms/sample | "
        f"keras_fido / {name} |",
        "|---|---|---|---|",
    ]
    for component in ("encoder", "decoder", "total"):
        key = f"{component}_ms_per_sample"
        lines.append(
            f"| {component} | {_fmt(peer['keras_fido'][key])} | "
            f"{_fmt(peer[key])} | {_ratio_text(peer['ratios'][component])} |"
        )
    return "\n".join(lines)


def quantized_table(records):
    """Float against quantized time and token agreement, per variant."""
    lines = [
        "| variant | mode | float decoder ms/sample | quantized decoder "
        "ms/sample | float / quantized | weights MiB | generated-token "
        "agreement | next-token agreement |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        q = r.get("quantized")
        if not q:
            continue
        lines.append(
            f"| {r['variant']} | {q['mode']} | "
            f"{_fmt(r['decoder_ms_per_sample'])} | "
            f"{_fmt(q['decoder_ms_per_sample'])} | "
            f"{r['decoder_ms_per_sample'] / q['decoder_ms_per_sample']:.2f} | "
            f"{q['weight_bytes'] / 2**20:.1f} "
            f"({100 * q['int8_weight_fraction']:.0f}% int8) | "
            f"{q['generated_token_agreement']:.3f} | "
            f"{q['next_token_agreement']:.3f} |"
        )
    return "\n".join(lines)


def beam_table(records):
    """Greedy against beam search decoder time at batch size 1."""
    lines = [
        "| variant | beams | greedy decoder ms (batch 1) | beam decoder ms "
        "(batch 1) | beam / greedy |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        b = r.get("beam_search")
        if not b:
            continue
        lines.append(
            f"| {r['variant']} | {b['num_beams']} | "
            f"{_fmt(b['greedy_decoder_ms_per_sample'])} | "
            f"{_fmt(b['beam_decoder_ms_per_sample'])} | "
            f"{b['beam_over_greedy']:.2f} |"
        )
    return "\n".join(lines)


def memory_table(memory):
    """Largest batch within the memory budget, per variant."""
    lines = [
        "| variant | max batch | limited by | memory at max batch GiB | "
        "cross-attn cache MiB/sample | batches tried |",
        "|---|---|---|---|---|---|",
    ]
    for m in memory["variants"]:
        at_max = m["required_bytes_at_max_batch"]
        batch = f"{m['max_batch']}" + (" (cap)" if m["cap_hit"] else "")
        lines.append(
            f"| {m['variant']} | {batch} | {m['limited_by']} | "
            f"{'-' if at_max is None else f'{at_max / 2**30:.2f}'} | "
            f"{m['cross_attention_cache_bytes_per_sample'] / 2**20:.2f} | "
            f"{', '.join(str(t['batch_size']) for t in m['trials'])} |"
        )
    return "\n".join(lines)


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
        "`" + result.get("command", "(command not recorded)") + "`",
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
        parts += [
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
    if result.get("roofline") and records:
        parts += [
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
            roofline_table(records, result["roofline"]),
        ]
    if result.get("peer"):
        peer = result["peer"]
        parts += [
            "",
            f"{sub} Against {peer['library']} (vanilla FiD, same size)",
            "",
            f"{peer['library']} {peer['transformers']}, torch "
            f"{peer['torch']}, {peer['threads']} threads, FiD-style "
            "(passages encoded apart, states concatenated, greedy "
            "`generate` with its cache, all steps forced, "
            "`torch.inference_mode`). Above 1, keras_fido is slower.",
            "",
            peer_table(peer),
        ]
    if records and any(r.get("quantized") for r in records):
        parts += [
            "",
            f"{sub} Quantized (`keras.Model.quantize`)",
            "",
            "Agreement with the float model's greedy tokens: generated "
            "(free running, a difference changes later prefixes) and "
            "next-token (the quantized decoder fed the float tokens). The "
            "weights are random, so logit margins are small and agreement "
            "is a lower bound on that of a trained model. keras-hub's "
            "`ReversibleEmbedding` (token embedding and output projection) "
            "cannot be quantized and stays float.",
            "",
            quantized_table(records),
        ]
    if records and any(r.get("beam_search") for r in records):
        parts += [
            "",
            f"{sub} Beam search at batch size 1",
            "",
            beam_table(records),
        ]
    for parameter, sweep in result.get("sweeps", {}).items():
        by_value = {int(k): v for k, v in sweep["records"].items()}
        parts += [
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
    if result.get("memory"):
        memory = result["memory"]
        parts += [
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
    return "\n".join(parts)


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
