"""Streaming readers for json arrays and json-lines files.

Both readers yield one record at a time and never hold more than the
current record (plus one read buffer) in memory, so multi-gigabyte FiD
retrieval files can be read with constant memory.
"""

import gzip
import json

_FORMATS = ("auto", "json", "jsonl")
_CHUNK_CHARS = 1 << 20
# A parse error this close to the end of the buffer may just be a record cut
# by the read boundary (e.g. a number or `true` split in two): read more.
_CUT_MARGIN = 64


def _open_text(path):
    path = str(path)
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, "r", encoding="utf-8")


def _detect_format(path, format):
    if format not in _FORMATS:
        raise ValueError(
            f"`format` must be one of {_FORMATS}. Received: format={format!r}"
        )
    if format != "auto":
        return format
    name = str(path)
    name = name[:-3] if name.endswith(".gz") else name
    if name.endswith(".jsonl"):
        return "jsonl"
    with _open_text(path) as f:
        while True:
            chunk = f.read(4096)
            if not chunk:
                return "jsonl"  # Empty file: no records either way.
            stripped = chunk.lstrip("\ufeff \t\r\n")
            if stripped:
                return "json" if stripped[0] == "[" else "jsonl"


def iter_json_records(path, format="auto"):
    """Yields the records of a json array or json-lines file, one by one.

    Args:
        path: str or path-like. A `.json` file holding one array of records,
            or a json-lines file (`.jsonl`) with one record per line. A
            `.gz` suffix reads it gzip-compressed.
        format: `"auto"`, `"json"` or `"jsonl"`. `"auto"` picks `"jsonl"`
            for a `.jsonl` name, else looks at the first character: `[`
            means a json array, anything else json lines.

    Yields:
        `(index, line, record)`: the 0-based record index, the 1-based line
        on which the record starts, and the decoded value.

    Raises:
        ValueError: on malformed json, naming the line (and for arrays the
            record index) where it was found.
    """
    format = _detect_format(path, format)
    if format == "jsonl":
        yield from _iter_json_lines(path)
    else:
        yield from _iter_json_array(path)


def _iter_json_lines(path):
    index = 0
    with _open_text(path) as f:
        for line_number, line in enumerate(f, start=1):
            if line_number == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"Malformed json on line {line_number} of {path} "
                    f"(record {index}): {e.msg} at column {e.colno}. Each "
                    "line of a json-lines file must hold one json value."
                ) from None
            yield index, line_number, record
            index += 1


class _ArrayReader:
    """Incremental parser for a file holding one json array."""

    def __init__(self, f, path):
        self.f = f
        self.path = path
        self.buffer = ""
        self.pos = 0
        self.eof = False
        self.line = 1  # Line number of `buffer[0]`.

    def line_at(self, pos):
        return self.line + self.buffer.count("\n", 0, pos)

    def read_more(self, chars=0):
        """Drops the consumed prefix and appends at least `chars` more
        characters (at least `_CHUNK_CHARS`); returns False at EOF."""
        if self.eof:
            return False
        self.line += self.buffer.count("\n", 0, self.pos)
        self.buffer = self.buffer[self.pos :]
        self.pos = 0
        chunk = self.f.read(max(chars, _CHUNK_CHARS))
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def skip_space(self):
        """Moves past whitespace; returns the next char or '' at EOF."""
        while True:
            buffer, pos = self.buffer, self.pos
            while pos < len(buffer) and buffer[pos] in " \t\r\n\ufeff":
                pos += 1
            self.pos = pos
            if pos < len(buffer):
                return buffer[pos]
            if not self.read_more():
                return ""

    def error(self, message, index=None, pos=None):
        pos = self.pos if pos is None else pos
        where = f"line {self.line_at(pos)} of {self.path}"
        if index is not None:
            where += f" (record {index})"
        return ValueError(f"Malformed json array on {where}: {message}")

    def decode(self, decoder, index):
        """Decodes the value at `pos`, reading more text when it is cut."""
        while True:
            try:
                value, end = decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as e:
                cut = (
                    e.msg.startswith("Unterminated string")
                    or len(self.buffer) - e.pos <= _CUT_MARGIN
                )
                # Read as much again as is buffered, so one huge record
                # costs linear, not quadratic, time.
                if cut and self.read_more(len(self.buffer)):
                    continue
                raise self.error(f"{e.msg}", index, e.pos) from None
            line = self.line_at(self.pos)
            self.pos = end
            return line, value


def _iter_json_array(path):
    decoder = json.JSONDecoder()
    with _open_text(path) as f:
        reader = _ArrayReader(f, path)
        char = reader.skip_space()
        if char != "[":
            raise reader.error(
                f"expected '[' to open the array, found {char!r}. Use "
                "format='jsonl' for json-lines files."
            )
        reader.pos += 1
        index = 0
        char = reader.skip_space()
        if char == "]":
            reader.pos += 1
        while char != "]":
            if char == "":
                raise reader.error("the array is not closed by ']'.", index)
            line, record = reader.decode(decoder, index)
            yield index, line, record
            index += 1
            char = reader.skip_space()
            if char == ",":
                reader.pos += 1
                char = reader.skip_space()
                if char == "]":
                    raise reader.error("trailing ',' before ']'.", index)
            elif char == "]":
                reader.pos += 1
            elif char == "":
                raise reader.error("the array is not closed by ']'.", index)
            else:
                raise reader.error(
                    f"expected ',' or ']' after record {index - 1}, found "
                    f"{char!r}.",
                    index - 1,
                )
        if reader.skip_space() != "":
            raise reader.error("unexpected text after the closing ']'.")
