"""Streaming readers for json arrays and json-lines files.

Both readers yield one record at a time and never hold more than the
current record (plus one read buffer) in memory, so multi-gigabyte FiD
retrieval files can be read with constant memory.
"""

import codecs
import gzip
import json
import zlib

_FORMATS = ("auto", "json", "jsonl")
_CHUNK_CHARS = 1 << 20
# A parse error this close to the end of the buffer may just be a record cut
# by the read boundary (e.g. a number or `true` split in two): read more.
_CUT_MARGIN = 64
_BOM = b"\xef\xbb\xbf"


def _open_binary(path):
    path = str(path)
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _decode_error(path, error, offset, line):
    """A `ValueError` for bytes of `path` that are not UTF-8."""
    bad = error.object[error.start : error.start + 1].hex()
    return ValueError(
        f"{path} is not valid UTF-8: byte 0x{bad} at byte offset {offset} "
        f"(line {line}) cannot be decoded ({error.reason}). FiD json files "
        "must be UTF-8; re-encode it, e.g. `iconv -f latin1 -t utf-8`."
    )


class _Utf8Reader:
    """Reads a (possibly gzipped) file as UTF-8 text, chunk by chunk.

    Unlike a text-mode file it knows where it is in bytes and lines, so a
    byte that is not UTF-8, or a damaged gzip stream, becomes a `ValueError`
    naming the file, the byte offset and the line.
    """

    def __init__(self, path):
        self.path = path
        self.f = _open_binary(path)
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.offset = 0  # Bytes handed to the decoder so far.
        self.newlines = 0  # b"\n" among them.

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()

    def close(self):
        self.f.close()

    def read_bytes(self, size=-1):
        try:
            return self.f.read(size)
        except (OSError, EOFError, zlib.error) as e:
            raise _read_error(self.path, e) from None

    def read(self, chars):
        """Returns at least one character (up to about `chars`), or `""`
        at the end of the file."""
        while True:
            data = self.read_bytes(max(chars, 1))
            pending = self.decoder.getstate()[0]
            try:
                text = self.decoder.decode(data, final=not data)
            except UnicodeDecodeError as e:
                offset = self.offset - len(pending) + e.start
                line = self.newlines + 1
                line += (pending + data)[: e.start].count(b"\n")
                raise _decode_error(self.path, e, offset, line) from None
            self.offset += len(data)
            self.newlines += data.count(b"\n")
            if text or not data:
                return text


def _read_error(path, error):
    return ValueError(
        f"Could not read {path}: {error}. A `.gz` file must be a complete "
        "gzip stream."
    )


def _open_text(path):
    return _Utf8Reader(path)


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
            chunk = f.read_bytes(4096)
            if not chunk:
                return "jsonl"  # Empty file: no records either way.
            stripped = chunk.replace(_BOM, b"").lstrip(b" \t\r\n")
            if stripped:
                return "json" if stripped[:1] == b"[" else "jsonl"


def iter_json_records(path, format="auto", on_malformed=None):
    """Yields the records of a json array or json-lines file, one by one.

    Args:
        path: str or path-like. A `.json` file holding one array of records,
            or a json-lines file (`.jsonl`) with one record per line. A
            `.gz` suffix reads it gzip-compressed. The file must be UTF-8.
        format: `"auto"`, `"json"` or `"jsonl"`. `"auto"` picks `"jsonl"`
            for a `.jsonl` name, else looks at the first character: `[`
            means a json array, anything else json lines.
        on_malformed: callable or `None`. If given, a line of a json-lines
            file that is not valid json (or not UTF-8) is passed to it as a
            `ValueError` naming the file and line, and skipped; it still
            takes up a record index. Defaults to `None`: raise. A json
            array always raises, since parsing cannot resume after
            malformed json inside it.

    Yields:
        `(index, line, record)`: the 0-based record index, the 1-based line
        on which the record starts, and the decoded value.

    Raises:
        ValueError: on malformed json, naming the file and the line (and
            the record index), or on bytes that are not UTF-8, naming the
            file, the byte offset and the line.
    """
    format = _detect_format(path, format)
    if format == "jsonl":
        yield from _iter_json_lines(path, on_malformed)
    else:
        yield from _iter_json_array(path, on_malformed is not None)


def _iter_json_lines(path, on_malformed):
    index = 0
    offset = 0  # Byte offset of the current line.
    with _open_text(path) as f:
        for line_number, raw in enumerate(_binary_lines(f), start=1):
            line_offset, offset = offset, offset + len(raw)
            if line_number == 1 and raw.startswith(_BOM):
                raw, line_offset = raw[len(_BOM) :], line_offset + len(_BOM)
            if not raw.strip():
                continue
            try:
                record = _decode_line(
                    raw, path, line_number, line_offset, index
                )
            except ValueError as e:
                if on_malformed is None:
                    raise
                on_malformed(e)
                index += 1
                continue
            yield index, line_number, record
            index += 1


def _binary_lines(reader):
    """The lines of a `_Utf8Reader`'s file as bytes, gzip errors wrapped."""
    while True:
        try:
            raw = reader.f.readline()
        except (OSError, EOFError, zlib.error) as e:
            raise _read_error(reader.path, e) from None
        if not raw:
            return
        yield raw


def _decode_line(raw, path, line_number, offset, index):
    """Parses one line of a json-lines file; `offset` is its first byte."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        where = f"{line_number}, record {index}"
        raise _decode_error(path, e, offset + e.start, where) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        message = f"{e.msg} at column {e.colno}"
    except ValueError as e:  # E.g. an integer with too many digits.
        message = str(e)
    raise ValueError(
        f"Malformed json on line {line_number} of {path} (record {index}): "
        f"{message}. Each "
        "line of a json-lines file must hold one json value."
    )


class _ArrayReader:
    """Incremental parser for a file holding one json array."""

    def __init__(self, f, path, hint=""):
        self.f = f
        self.path = path
        self.hint = hint  # Appended to every error message.
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
        return ValueError(
            f"Malformed json array on {where}: {message}{self.hint}"
        )

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
            except ValueError as e:  # E.g. an integer with too many digits.
                raise self.error(str(e), index) from None
            line = self.line_at(self.pos)
            self.pos = end
            return line, value


def _iter_json_array(path, skipping):
    decoder = json.JSONDecoder()
    hint = ""
    if skipping:
        hint = (
            " Malformed json inside a json array cannot be skipped: the "
            "parser cannot tell where the next record starts. Fix the file "
            "or convert it to json lines, where a bad line can be skipped."
        )
    with _open_text(path) as f:
        reader = _ArrayReader(f, path, hint)
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
