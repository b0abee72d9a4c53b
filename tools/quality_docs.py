"""Writes docs/quality.md from the recorded reading experiments.

    python tools/quality_docs.py [--records DIR] [--out docs/quality.md]

Every figure in the page comes from a JSON record written by
`recipes/reader_experiments.py --json` (one file per experiment) or by the
quickstart (`--json docs/quickstart_cpu_jax.json`); nothing is typed by
hand. Records list their own command.
"""

import argparse
import glob
import json
import os

from keras_fido.data.country_facts import FACT_NAMES

FACTS = FACT_NAMES
COPY_FACTS = ("capital", "calling_code", "tld", "area", "population")

INTRO = """# Reading quality on the embedded task

The embedded country task (`keras_fido.data.build_country_qa`) holds out
whole countries: a test question about a capital, a calling code, a
domain, an area or a population has an answer that no training target
contains, so the reader can only get it right by copying it out of its
passages. Region, subregion and language answers are shared across
countries and can be recalled. EM is exact match on the held-out
questions, by kind of question. All runs: JAX backend, 2-core CPU, seed 0,
trained from scratch in the run. The experiments' training seconds were
taken while other work shared the machine: they show each run's length,
not its speed.

"""


# Recipe settings worth naming when a record changes them.
TRIED = {
    "cloze_copies": "cloze copies",
    "cloze_answers": "scrambled cloze answers",
    "counterfactual_answers": "scrambled answer-swapped copies",
    "copy_phase_epochs": "a one-passage copying phase",
    "tie_embeddings": "tied embeddings",
    "decoder_width": "a decoder as wide as the encoder (shared embedding)",
    "output_init_scale": "an output projection drawn at 1/sqrt(width)",
}


def _copy_best(records):
    return max(
        (r["test_em_by_fact"].get(f, 0.0) for r in records for f in COPY_FACTS),
        default=0.0,
    )


def _uses_copy_head(record):
    return bool(record.get("settings", {}).get("copy_attention"))


def _named(records):
    return {r["name"]: r for r in records}


def _em(record, fact=None):
    if fact is None:
        return f"{record['test_em']:.1f}"
    return f"{record['test_em_by_fact'].get(fact, 0.0):.0f}%"


def _copy_head(record):
    """Which copy head a record's reader had (`None`: no copy head)."""
    if not _uses_copy_head(record):
        return None
    # Records made before the setting was recorded read the decoder's
    # last cross-attention.
    settings = record["settings"]
    if settings.get("copy_head"):
        return settings["copy_head"]
    return "pointer" if "copy_key_offsets" in settings else "cross_attention"


def _key_offsets(record):
    offsets = record.get("settings", {}).get("copy_key_offsets")
    return None if offsets is None else [int(o) for o in offsets]


def _copy_head_label(record):
    """The copy head column: the head, and what its pointer keys read."""
    head = _copy_head(record)
    if head is None:
        return "-"
    offsets = _key_offsets(record)
    if head != "pointer" or offsets is None:
        return head.replace("_", " ")
    if not offsets:
        return "pointer, keys: token alone"
    return "pointer, keys: token and " + ", ".join(f"{o:+d}" for o in offsets)


def _contrast(what, a, b, ra, rb):
    if what == "key_before":
        return (
            "The pointer's key of each passage token also reading the state "
            f"of the token before it (`{a}` to `{b}`, `--copy-key-offsets`): "
            f"test EM {_em(ra)} to {_em(rb)}; capital {_em(ra, 'capital')} "
            f"to {_em(rb, 'capital')}, demonym {_em(ra, 'demonym')} to "
            f"{_em(rb, 'demonym')}, currency {_em(ra, 'currency')} to "
            f"{_em(rb, 'currency')}. Where an answer starts is told by the "
            'words before it ("... is" before a capital); a key made from '
            "the state of the answer's first piece alone tends to point at "
            "the country name, which stands in every passage."
        )
    if what == "key_after":
        return (
            "Reading the token after it as well (`" + a + "` to `" + b + "`, "
            f"the default): test EM {_em(ra)} to {_em(rb)}; neighbour "
            f"{_em(ra, 'neighbour')} to {_em(rb, 'neighbour')}, area "
            f"{_em(ra, 'area')} to {_em(rb, 'area')}, capital "
            f"{_em(ra, 'capital')} to {_em(rb, 'capital')} (a capital also "
            'stands first in "Dhaka is the capital of ...").'
        )
    if what == "tokenizer":
        return (
            "A tokenizer trained only on the training examples' text "
            f"(`{b}`, `--tokenizer-text train`), so that every piece has "
            "a trained embedding and held-out names are cut into known "
            f"pieces: test EM {_em(ra)} to {_em(rb)}, capital "
            f"{_em(ra, 'capital')} to {_em(rb, 'capital')}, calling code "
            f"{_em(ra, 'calling_code')} to {_em(rb, 'calling_code')}; "
            "held-out answers then take more, smaller pieces, and EM "
            "falls."
        )
    verdict = (
        "more steps still help, so the run's budget is part of what limits it"
        if rb["test_em"] > ra["test_em"] + 3
        else "the budget is not what limits it"
    )
    return (
        f"Twice the training (`{b}`, 8 epochs) gives {_em(rb)} "
        f"against {_em(ra)} (`{a}`): {verdict}."
    )


def _copy_head_contrasts(records, baseline=None):
    """One sentence per pair of records that differ in one setting.

    `baseline`, the quickstart's FiDO record, stands for `quickstart_fido`
    (the default settings).
    """
    named = _named(records)
    if baseline is not None:
        named["quickstart_fido"] = dict(baseline, name="quickstart_fido")
    pairs = (
        ("pointer_keys_alone", "pointer_keys_before", "key_before"),
        ("pointer_keys_before", "quickstart_fido", "key_after"),
        ("pointer_keys_alone", "pointer_keys_alone_e8", "epochs"),
        ("pointer_keys_alone", "pointer_keys_alone_train_text", "tokenizer"),
    )
    return [
        _contrast(what, a, b, named[a], named[b])
        for a, b, what in pairs
        if a in named and b in named
    ]


def findings(records, baseline=None):
    """The conclusions, with their figures computed from the records."""
    if not records:
        return ""
    plain = [r for r in records if not _uses_copy_head(r)]
    copying = [r for r in records if _uses_copy_head(r)]
    lines = ["## What the records show", ""]
    if plain:
        shared = [
            r["test_em_by_fact"][f]
            for r in plain
            for f in ("region", "subregion")
            if f in r["test_em_by_fact"]
        ]
        watched = [
            w["copy_em"] for r in plain for w in r.get("copy_em_by_epoch", [])
        ]
        watch_text = (
            " The copy-EM watched after every epoch peaks at "
            f"{max(watched):.0f}%."
            if watched
            else ""
        )
        tried = (
            ", ".join(
                sorted(
                    {
                        TRIED[key]
                        for r in plain
                        for key, value in r.get("settings", {}).items()
                        if key in TRIED
                        and value not in (None, 0, False, "copied", "donor")
                    }
                )
            )
            or "none"
        )
        lines.append(
            f"""- Without the copy head ({len(plain)} experiments), the best EM
  on any kind of question whose answer must be copied (capital, calling
  code, domain, area, population) is {_copy_best(plain):.0f}%, while
  region and subregion, answers shared across countries, reach
  {min(shared):.0f}-{max(shared):.0f}%. The readers find the passage but
  answer with a memorised string of the right kind.{watch_text} Tried
  there: {tried}. T5.1.1's output projection has to learn one row per
  piece, and copying a piece means routing its identity from the encoder
  through the values of the cross-attention into that row: in these runs
  that path does not form within the steps of the run."""
        )
    heads = {
        "cross_attention": "a copy head that reads the last cross-attending "
        "layer's attention, mixed over its heads, with no span continuation",
        "pointer": "the pointer copy head (its own query and keys, spans "
        "carried on from piece to piece)",
    }
    for head, text in heads.items():
        group = [r for r in copying if _copy_head(r) == head]
        if head == "pointer" and baseline is not None:
            group.append(dict(baseline, name="quickstart_fido"))
        if not group:
            continue
        best = max(group, key=lambda r: r["test_em"])
        lines.append(
            f"""- With {text} ({len(group)} runs), copying needs only
  attention in the right place: the best copy-fact EM is
  {_copy_best(group):.0f}% and the best test EM {best["test_em"]:.1f}
  (`{best["name"]}`)."""
        )
    if copying or baseline is not None:
        lines += [
            f"- {line}" for line in _copy_head_contrasts(records, baseline)
        ]
    return "\n".join(lines) + "\n"


def _fmt(value):
    return "-" if value is None else f"{value:.0f}"


def _by_fact_row(by_fact):
    return " | ".join(_fmt(by_fact.get(f)) for f in FACTS)


def experiment_table(records):
    head = (
        "| experiment | copy head | test EM | "
        + " | ".join(FACTS)
        + " | final loss | train s |\n|"
        + "---|" * (len(FACTS) + 5)
    )
    rows = [head]
    for record in records:
        rows.append(
            f"| {record['name']} | {_copy_head_label(record)} | "
            f"{record['test_em']:.1f} | "
            + _by_fact_row(record["test_em_by_fact"])
            + f" | {record['final_train_loss']:.3f} | "
            f"{record['train_seconds']:.0f} |"
        )
    return "\n".join(rows)


def _phases(record):
    """The watched epochs, each with its phase (older records name none:
    their first `copy_phase_epochs` entries are the copy phase)."""
    watched = record.get("copy_em_by_epoch") or []
    first = record.get("settings", {}).get("copy_phase_epochs", 0)
    return [
        dict(
            w, phase=w.get("phase") or ("copy phase" if i < first else "train")
        )
        for i, w in enumerate(watched)
    ]


def command_list(records):
    lines = []
    for record in records:
        lines.append(f"- **{record['name']}**: `{record['command']}`")
        watched = _phases(record)
        if watched:
            lines.append(
                "  copy-EM by epoch: "
                + ", ".join(
                    f"{w['phase']} {w['epoch']}: {w['copy_em']:.0f}"
                    for w in watched
                )
            )
    return "\n".join(lines)


def _quickstart_settings(readers):
    settings = next(iter(readers.values())).get("settings")
    if not settings:
        return "defaults"
    head = (
        f"the copy head ({_copy_head_label({'settings': settings})}) on "
        "both readers"
        if settings.get("copy_attention")
        else "no copy head"
    )
    vocabulary = f"a {settings['vocabulary_size']:,}-piece BPE vocabulary"
    if settings.get("tokenizer_text") == "train":
        vocabulary += " trained on the training examples' text"
    if settings.get("split_punctuation"):
        vocabulary += " with punctuation as pieces of its own"
    return (
        f"defaults: {settings['passages']} BM25 passages x "
        f"{settings['passage_length']} tokens, {vocabulary}, "
        f"{settings['counterfactual_copies']} answer-swapped copy of each "
        f"training question, {settings['epochs']} epochs, {head}"
    )


def quickstart_section(path):
    with open(path) as f:
        readers = json.load(f)
    lines = [
        "## The quickstart",
        "",
        "`KERAS_BACKEND=jax python -m keras_fido.quickstart --json "
        f"{path}` ({_quickstart_settings(readers)}):",
        "",
        "| reader | parameters | train s | generate ms/sample | test EM | "
        + " | ".join(FACTS)
        + " |",
        "|" + "---|" * (len(FACTS) + 5),
    ]
    for name, record in readers.items():
        lines.append(
            f"| {name} | {record['parameters']:,} | "
            f"{record['train_seconds']:.0f} | "
            f"{record['generate_ms_per_sample']:.1f} | "
            f"{record['test_em']:.1f} | "
            + _by_fact_row(record["test_em_by_fact"])
            + " |"
        )
    rerank = [
        (name, r["reranking"])
        for name, r in readers.items()
        if "reranking" in r
    ]
    if rerank:
        lines += [
            "",
            "Passage ranking, with 2P BM25 passages per test question: "
            "precision@1 is how often the top passage holds a gold answer; "
            "EM reads BM25's top P or the reader's top P "
            "(`keras_fido.models.rerank_by_reader_scores`).",
            "",
            "| reader | precision@1 BM25 | precision@1 reader | EM BM25 top P "
            "| EM reranked top P |",
            "|---|---|---|---|---|",
        ]
        for name, r in rerank:
            lines.append(
                f"| {name} | {r['precision_at_1_bm25']:.1f} | "
                f"{r['precision_at_1_reader']:.1f} | "
                f"{r['test_em_bm25_top']:.1f} | "
                f"{r['test_em_reranked_top']:.1f} |"
            )
    copyable = next(iter(readers.values())).get("test_answers_copyable")
    if copyable:
        lines += [
            "",
            "Test answers whose pieces stand, in order, in one of their "
            "passages (what a copy head can copy piece for piece), by kind "
            "of question: "
            + ", ".join(f"{k} {100 * v:.0f}%" for k, v in copyable.items())
            + ". Exact match ignores punctuation, so a copied `+1268.` "
            "still counts for the answer `+1268`.",
        ]
    first = next(iter(readers.values()))
    total = first.get("run_total_seconds")
    if total is not None:
        lines += ["", f"The whole run took {total:.0f} s{_load(first)}."]
    return "\n".join(lines)


def ladder_section(path):
    """The quality-per-cost ladder from `recipes/quality_ladder.py`."""
    with open(path) as f:
        record = json.load(f)
    seeds = len(record["seeds"])
    lines = [
        "## Quality against cost: the ladder",
        "",
        f"`{record['command']}` ({seeds} seeds per variant, "
        f"{record['settings']['epochs']} epochs each, the quickstart's "
        f"recipe; the whole run took {record['run_total_seconds']:.0f} s"
        f"{_load(record)}). "
        "Encoder: the mini size (2 layers, width 96) for every variant; "
        "EM is the mean over seeds +- its standard deviation, EM by fact "
        "the mean; ms/sample is greedy `generate` on the test questions "
        "(median over seeds), encoder included."
        + _ladder_head(record["settings"]),
        "",
        "| variant | decoder | K | K/V heads | parameters | test EM | "
        "ms/sample | " + " | ".join(FACTS) + " |",
        "|" + "---|" * (len(FACTS) + 7),
    ]
    for row in record["ladder"]:
        lines.append(
            f"| {row['variant']} | {row['decoder_size']} | "
            f"{row['cross_attention_interval']} | "
            f"{row['decoder_num_key_value_heads']} | "
            f"{row['parameters']:,} | {row['test_em_mean']:.1f} +- "
            f"{row['test_em_std']:.1f} | "
            f"{row['generate_ms_per_sample']:.1f} | "
            + _by_fact_row(row["test_em_by_fact_mean"])
            + " |"
        )
    lines += ["", _ladder_reading(record["ladder"])]
    plot = os.path.splitext(path)[0] + ".png"
    if os.path.exists(plot):
        rel = os.path.relpath(plot, "docs")
        lines += ["", f"![EM against ms/sample]({rel})"]
    return "\n".join(lines)


def _load(record):
    """The machine's load average around a timed run, when recorded."""
    load = record.get("load_average")
    if not load:
        return ""
    return (
        f" (1-minute load average {load['start']:.1f} at the start, "
        f"{load['end']:.1f} at the end, on 2 cores)"
    )


def _ladder_head(settings):
    if not settings.get("copy_attention"):
        return " No copy head."
    head = _copy_head({"settings": settings})
    if head == "pointer":
        return (
            " Every variant has the copy head ("
            + _copy_head_label({"settings": settings})
            + ")."
        )
    return (
        " Every variant has a copy head that reads the last "
        "cross-attending layer's attention, without span continuation."
    )


def _ladder_reading(ladder):
    """The ladder's steps against the paper's, computed from the rows."""
    rows = {r["variant"]: r for r in ladder}
    steps = (
        ("fid", "fid_lsa", "layer-sparse cross-attention", -0.3),
        ("fid_lsa", "fido", "multi-query attention", 0.0),
        ("fido", "fido_larger_decoder", "the larger decoder", 1.9),
    )
    parts = []
    for a, b, what, paper in steps:
        if a not in rows or b not in rows:
            continue
        delta = rows[b]["test_em_mean"] - rows[a]["test_em_mean"]
        spread = max(rows[a]["test_em_std"], rows[b]["test_em_std"])
        size = "within" if abs(delta) <= spread else "beyond"
        parts.append(
            f"{what} {delta:+.1f} EM ({size} one seed standard deviation, "
            f"{spread:.1f}; the paper on NQ: {paper:+.1f})"
        )
    if not parts:
        return ""
    larger = ""
    if "fido" in rows and "fido_larger_decoder" in rows:
        gain = (
            rows["fido_larger_decoder"]["test_em_mean"]
            - rows["fido"]["test_em_mean"]
        )
        larger = (
            " The larger decoder, twice the parameters at about "
            f"{rows['fido_larger_decoder']['generate_ms_per_sample']:.1f} "
            "ms/sample, "
            + (
                "scores higher, the direction the paper reports."
                if gain > 0
                else "is not trained enough by the same steps on a few "
                "thousand questions."
            )
        )
    return (
        "Read step by step: "
        + "; ".join(parts)
        + ". At these sizes a greedy answer costs a few milliseconds on "
        "the CPU, most of it the encoder and the per-step overhead, so "
        "LSA and MQ save little time here; the decoder-bound regime where "
        "they pay is measured in [performance.md](performance.md)." + larger
    )


def diagnostic_section(paths):
    """The synthetic copying tasks of `recipes/copy_diagnostic.py`."""
    lines = ["## Can the reader learn to copy at all?", ""]
    for path in paths:
        with open(path) as f:
            record = json.load(f)
        settings, runs = record["settings"], record["runs"]
        steps = [p["step"] for p in next(iter(runs.values()))["curve"]]
        passages = settings.get("passages", 1)
        span = settings.get("span", 1)
        head = _copy_head_label(
            {
                "settings": dict(
                    settings,
                    copy_attention=True,
                    copy_head=record.get("copy_head"),
                )
            }
        )
        lines += [
            f"`{record['command']}`: {passages} passage(s) of "
            f"{settings['passage_length']} random pieces (of "
            f"{settings['vocabulary_size']}), one marker in one of them; "
            f"the target is the {span} piece(s) after the marker; test "
            "passages are new, so only copying is right. Held-out exact "
            "copies (%) by training step, same tiny FiD reader and seed "
            f"(copy head: {head}):",
            "",
            "| output | " + " | ".join(str(s) for s in steps) + " |",
            "|" + "---|" * (len(steps) + 1),
        ]
        for name, run in runs.items():
            lines.append(
                f"| {name} | "
                + " | ".join(f"{p['copy_accuracy']:.0f}" for p in run["curve"])
                + " |"
            )
        lines.append("")
        if {"t5_output", "copy_head"} <= set(runs):
            plain, head = (
                runs[k]["curve"][-1] for k in ("t5_output", "copy_head")
            )
            lines += [
                f"After {plain['step']} steps, T5.1.1's output copies "
                f"{plain['copy_accuracy']:.0f}% of the held-out pieces and "
                f"the copy head {head['copy_accuracy']:.0f}%: with T5's "
                "output, the piece's identity has to travel from the "
                "encoder through the cross-attention values into a "
                "vocabulary row, and where to look gets no gradient until "
                "it does; with the head, the pointer itself is the answer's "
                "distribution, and the position after the marker is found "
                "directly.",
                "",
            ]
        elif "copy_head" in runs and span > 1:
            curve = runs["copy_head"]["curve"]
            first = next(
                (p["step"] for p in curve if p["copy_accuracy"] >= 90), None
            )
            reached = (
                f"copies {curve[-1]['copy_accuracy']:.0f}% of the held-out "
                f"spans whole after {curve[-1]['step']} steps"
                + (f" (90% from step {first})" if first else "")
            )
            lines += [
                f"With {passages} passages and {span}-piece answers, the "
                f"copy head {reached}: the pointer finds the first piece "
                "and the span continuation carries the copy on to the "
                "next ones.",
                "",
            ]
    return "\n".join(lines)


def _quickstart_fido(path):
    """The quickstart's FiDO record when it used the copy head."""
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        fido = json.load(f).get("fido")
    settings = (fido or {}).get("settings", {})
    if not settings.get("copy_attention"):
        return None
    if not settings.get("split_punctuation"):
        return None
    # The quickstart reads with the library's copy head: the pointer.
    return dict(fido, settings=dict(settings, copy_head="pointer"))


def memory_section(paths):
    """FiDO with passage memory from `recipes/passage_memory.py`: one
    table per record, the first the main one."""
    lines = ["## Passage memory (LUMEN): quality against the live fraction"]
    for path in paths:
        lines += ["", _memory_table(path)]
    return "\n".join(lines)


def _memory_table(path):
    with open(path) as f:
        record = json.load(f)
    settings = record["settings"]
    rows = record["fractions"]
    full = rows[0]
    lines = [
        f"`{record['command']}` ({len(record['seeds'])} seeds; the whole "
        f"run took {record['run_total_seconds']:.0f} s{_load(record)}). "
        "A FiDO reader with a six-layer encoder (width 96; decoder: the "
        f"ladder's FiDO) is trained once (seed {settings['seed']}) for "
        f"{settings['epochs']} epochs with every layer live, its "
        f"sequences packed as a {settings['question_length']}-token "
        "question block then the passage; each live fraction is then "
        "fine-tuned from it, once per seed (the seed sets the order of "
        f"the examples), for {settings['finetune_epochs']} epoch(s) "
        f"(learning rate {settings['finetune_learning_rate']:g}) with the "
        "memory encoder frozen (fraction 1: nothing frozen). Encoder "
        "multiplications are per query, relative to fraction 1; the "
        "memory layers' work on a passage is done once, when its memory "
        "is stored. The full reader alone scores "
        f"{record['full_reader']['test_em']:.1f} test EM. "
        "ms/sample is greedy `generate` on the test questions "
        "with the memory computed on the fly (median over seeds), so it "
        "does not show the saving; the base-size timings in "
        "[performance.md](performance.md) do.",
        "",
        "| live fraction | live layers | test EM | vs fraction 1 | encoder "
        "mults/query | stored mults/passage | ms/sample | "
        + " | ".join(FACTS)
        + " |",
        "|" + "---|" * (len(FACTS) + 7),
    ]
    base = full["encoder_flops_per_query"]["per_query"]
    for row in rows:
        flops = row["encoder_flops_per_query"]
        lines.append(
            f"| {row['live_fraction']} | {row['encoder_live_layers']} of "
            f"{row['encoder_num_layers']} | {row['test_em_mean']:.1f} +- "
            f"{row['test_em_std']:.1f} | "
            f"{row['test_em_mean'] - full['test_em_mean']:+.1f} | "
            f"{flops['per_query'] / base:.2f}x | "
            f"{flops['stored_per_passage'] / 1e6:.1f} M | "
            f"{row['generate_ms_per_sample']:.1f} | "
            + _by_fact_row(row["test_em_by_fact_mean"])
            + " |"
        )
    plot = os.path.splitext(path)[0] + ".png"
    if os.path.exists(plot):
        rel = os.path.relpath(plot, "docs")
        lines += ["", f"![EM against encoder cost]({rel})"]
    return "\n".join(lines)


def render(
    records, quickstart_json, ladder_json=None, diagnostics=(), memory=None
):
    parts = [INTRO]
    if quickstart_json and os.path.exists(quickstart_json):
        parts += [quickstart_section(quickstart_json), ""]
    if diagnostics:
        parts += [diagnostic_section(diagnostics), ""]
    if ladder_json and os.path.exists(ladder_json):
        parts += [ladder_section(ladder_json), ""]
    if memory:
        parts += [memory_section(memory), ""]
    parts += [
        "## Reading experiments",
        "",
        "FiDO reader of the quickstart unless the command says otherwise; "
        "EM in %, by kind of question.",
        "",
        experiment_table(records),
        "",
        "Commands (each writes the record the row comes from):",
        "",
        command_list(records),
        "",
        findings(records, _quickstart_fido(quickstart_json)),
    ]
    return "\n".join(parts)


def _memory_records(folder):
    paths = sorted(glob.glob(os.path.join(folder, "*.json")))
    return sorted(
        paths, key=lambda p: not os.path.basename(p).startswith("passage_")
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--records", default="docs/quality")
    p.add_argument("--quickstart", default="docs/quickstart_cpu_jax.json")
    p.add_argument(
        "--ladder", default="docs/quality/ladder/ladder_cpu_jax.json"
    )
    p.add_argument("--diagnostics", default="docs/quality/diagnostics")
    p.add_argument(
        "--memory",
        default="docs/quality/passage_memory",
        help="folder of recipes/passage_memory.py records; "
        "passage_memory_*.json first",
    )
    p.add_argument("--out", default="docs/quality.md")
    args = p.parse_args(argv)
    paths = sorted(glob.glob(os.path.join(args.records, "*.json")))
    records = []
    for path in paths:
        with open(path) as f:
            records.append(json.load(f))
    records.sort(key=lambda r: r.get("name", ""))
    with open(args.out, "w") as f:
        f.write(
            render(
                records,
                args.quickstart,
                args.ladder,
                sorted(glob.glob(os.path.join(args.diagnostics, "*.json"))),
                _memory_records(args.memory),
            )
        )
    print(f"wrote {args.out} from {len(records)} experiment record(s)")


if __name__ == "__main__":
    main()
