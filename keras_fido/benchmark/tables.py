"""The benchmark's markdown tables, one function per table."""


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


SWEEP_LABELS = {
    "passages": "passages per sample",
    "output_length": "output length (decoding steps)",
    "batch_size": "batch size",
}


def sweep_time(record):
    """Total time per sample, or the decoder's in decoder-only runs."""
    return record["total_ms_per_sample"] or record["decoder_ms_per_sample"]


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
            cells.append(_fmt(sweep_time(r)))
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


def passage_memory_table(records):
    """Per query encoder work and time, with a store's read, by variant."""
    lines = [
        "| variant | live layers | encoder mults/query | encoder ms/sample "
        "| store read ms/sample | store GB/s | total ms/sample, read "
        "included | bytes/passage | store build ms/passage |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        config = r["config"]
        depth = config["encoder_num_layers"]
        live = config.get("encoder_live_layers") or depth
        store = r.get("memory_store") or {}
        read = store.get("read_ms_per_sample")
        total = r.get("total_ms_per_sample")
        flops = r.get("encoder_flops_per_query")
        stored = store.get("bytes_per_passage")
        lines.append(
            f"| {r['variant']} | {live} of {depth} | "
            + ("-" if not flops else f"{flops['per_query'] / 1e9:.1f} G")
            + f" | {_fmt(r.get('encoder_ms_per_sample'))} | {_fmt(read)} | "
            f"{_fmt(store.get('read_gb_per_s'))} | "
            f"{_fmt(None if total is None else total + (read or 0))} | "
            + ("-" if stored is None else f"{stored:,}")
            + f" | {_fmt(store.get('build_ms_per_passage'))} |"
        )
    return "\n".join(lines)
