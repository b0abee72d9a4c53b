"""Writes the uptraining table of docs/conversion.md from recorded runs.

    python tools/uptraining_docs.py [--records docs/uptraining] \
        [--out docs/conversion.md]

Each record is the `--json` file of one `recipes/uptrain_fido.py` run
(one per backend), which names its own command, backend and machine; the
table replaces what stands between the two marker lines of the page.
Nothing is typed by hand.
"""

import argparse
import glob
import json
import os

BEGIN = "<!-- uptraining table: written by tools/uptraining_docs.py -->"
END = "<!-- end of the uptraining table -->"


def read_records(directory):
    """The records of `directory`, sorted by backend."""
    records = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path) as file:
            records.append(json.load(file))
    return sorted(records, key=lambda record: record["backend"])


def _columns(records):
    """Backends with the same losses share a column."""
    columns = {}
    for record in records:
        key = tuple(
            round(record[k], 3)
            for k in ("converted_loss_before", "converted_loss_after")
        ) + tuple(round(v, 3) for v in record["source_loss"].values())
        columns.setdefault(key, []).append(record)
    return list(columns.values())


def _gap_closed(record):
    source = min(record["source_loss"].values())
    before, after = (
        record["converted_loss_before"],
        record["converted_loss_after"],
    )
    return 100 * (before - after) / (before - source)


def table(records):
    """The markdown table and the sentence that reads it."""
    columns = _columns(records)
    first = records[0]
    names = [", ".join(r["backend"] for r in group) for group in columns]
    rows = [
        "| model | " + " | ".join(f"loss ({n})" for n in names) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for checkpoint in first["source_loss"]:
        rows.append(
            f"| source `{os.path.basename(checkpoint)}`, as FiD | "
            + " | ".join(
                f"{group[0]['source_loss'][checkpoint]:.3f}"
                for group in columns
            )
            + " |"
        )
    for label, key in (
        ("converted FiDO, before uptraining", "converted_loss_before"),
        (f"after {first['steps']} uptraining steps", "converted_loss_after"),
    ):
        rows.append(
            f"| {label} | "
            + " | ".join(f"{group[0][key]:.3f}" for group in columns)
            + " |"
        )
    closed = ", ".join(
        f"{_gap_closed(group[0]):.0f}% ({names[i]})"
        for i, group in enumerate(columns)
    )
    reading = (
        f"{first['steps']} steps close {closed} of the gap that pooling "
        "the K/V heads and dropping cross-attention layers opened."
    )
    return "\n".join(rows) + "\n\n" + reading


def section(records):
    """The text between the markers: settings, table, commands."""
    first = records[0]
    commands = "\n".join(
        f"- {r['backend']} ({r['machine']}): `{r['command']}`" for r in records
    )
    return (
        f"FiDO with {first['num_key_value_heads']} K/V head(s) and K="
        f"{first['cross_attention_interval']}, span-corruption loss per "
        f"target token on held-out documents (batch {first['batch_size']}, "
        f"{first['input_length']} input tokens):\n\n"
        f"{table(records)}\n\nCommands:\n\n{commands}"
    )


def replace_section(page, text):
    """`page` with the text between the markers replaced by `text`."""
    if page.count(BEGIN) != 1 or page.count(END) != 1:
        raise ValueError(
            f"The page must hold the markers {BEGIN!r} and {END!r} once "
            "each, in that order."
        )
    head, rest = page.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{text}\n{END}{tail}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--records", default="docs/uptraining")
    p.add_argument("--out", default="docs/conversion.md")
    args = p.parse_args(argv)
    records = read_records(args.records)
    if not records:
        raise SystemExit(
            f"No records in {args.records}: run recipes/uptrain_fido.py "
            f"with --json {args.records}/uptraining_cpu_<backend>.json"
        )
    with open(args.out) as file:
        page = file.read()
    with open(args.out, "w") as file:
        file.write(replace_section(page, section(records)))
    print(f"wrote {args.out} from {len(records)} record(s)")


if __name__ == "__main__":
    main()
