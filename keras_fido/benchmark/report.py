"""Markdown tables and matplotlib figures for benchmark records."""

import os


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


def plot_stacked(records, path):
    """Stacked encoder/decoder time per sample for each variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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

    `sweep` maps a parameter value to that run's list of records.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    values = sorted(sweep)
    variants = [r["variant"] for r in sweep[values[0]]]
    for variant in variants:
        ys = []
        for value in values:
            r = next(r for r in sweep[value] if r["variant"] == variant)
            ys.append(r["total_ms_per_sample"] or r["decoder_ms_per_sample"])
        ax.plot(values, ys, marker="o", label=variant)
    ax.set_xlabel(parameter)
    ax.set_ylabel("ms per sample")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
