"""Read user files as they are, and write outputs atomically.

Reading never converts types: every CSV cell arrives as a string (or null), so validation can say exactly
which row and column was wrong, and a quarantined row can be written back as it was read.
"""

from __future__ import annotations

import codecs
import csv
import errno
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from tbml.errors import InputFileError, OutputError

SOURCE_ROW = "source_row"  # 1 = the first data row after the header
MALFORMED_TEXT = "malformed_text"  # a CSV row with the wrong number of fields, as it stood in the file
KEPT_PREFIX = "src:"  # a source column kept apart from tbml's own columns travels under this prefix
# Columns tbml adds beside what it reads (a quarantine file leads with them). A source column with one of
# these names is renamed with KEPT_PREFIX, so that a quarantine file tbml wrote can be read back.
RESERVED_COLUMNS = (SOURCE_ROW, MALFORMED_TEXT, "reason", "reasons", "detail")
MAX_FIELD_CHARS = 32 << 20  # a longer cell is refused with its row number: most likely a quote left open
_BLOCK_BYTES = 16 << 20  # pyarrow's block must hold a whole row; a longer row goes to the Python reader
_DELIMITERS = (",", ";", "\t", "|")
_HEAD_BYTES = 1 << 16  # what is looked at to tell what a file is

# What a file is by its first bytes, when it is not text: (signature, what to tell the user).
_NOT_CSV = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image, not a CSV file"),
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or a zip archive, not a CSV file: save it as CSV "
                    "(in Excel: Save As, CSV UTF-8), or unzip it, and read that"),
    (b"PK\x05\x06", "an empty zip archive, not a CSV file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel workbook (.xls) or another Office file, not a CSV "
                                          "file: save it as CSV (in Excel: Save As, CSV UTF-8) and read that"),
    (b"\x1f\x8b", "gzip-compressed, not a plain CSV file: decompress it first (gunzip)"),
    (b"BZh", "bzip2-compressed, not a plain CSV file: decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "xz-compressed, not a plain CSV file: decompress it first (unxz)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed, not a plain CSV file: decompress it first (unzstd)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive, not a CSV file: extract it first"),
    (b"%PDF", "a PDF document, not a CSV file"),
    (b"\xff\xd8\xff", "a JPEG image, not a CSV file"),
    (b"GIF8", "a GIF image, not a CSV file"),
    (b"SQLite format 3\x00", "an SQLite database, not a CSV file: export the table as CSV"),
)
# Byte-order marks, UTF-32 before UTF-16 (FF FE 00 00 begins with FF FE): the mark says how the text is encoded.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def read_raw(path: str | Path, *, delimiter: str | None = None, encoding: str | None = "utf-8",
             option_prefix: str = "--") -> pd.DataFrame:
    """Rows of a CSV or Parquet file, cells as strings for CSV, with a ``source_row`` column.

    Every CSV cell is read as the text it holds: "NA", "NULL" or "n/a" stay text (what counts as missing is
    decided per column in ``tbml.validate``); only an empty cell is null. CSV rows with the wrong number of
    fields are kept, not dropped: they come back with ``malformed_text`` set and every other cell null, for
    validation to quarantine. A source column named like one of tbml's own (``RESERVED_COLUMNS``) comes back
    renamed with the ``src:`` prefix.

    ``frame.attrs`` says what was used: ``delimiter``, ``encoding`` (a byte-order mark overrides the one
    asked for) and ``renamed`` (source name -> new name). ``option_prefix`` names the command-line options
    in messages ("--" for the invoices, "--transfers-" for the transfers).
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: file not found")
    if path.is_dir():
        raise InputFileError(f"{path}: is a directory, expected a CSV or Parquet file")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: file is empty")
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if path.suffix.lower() in (".parquet", ".pq") or head.startswith(b"PAR1"):
        frame, used = _read_parquet(path), {"delimiter": None, "encoding": None}
        names, renamed = _apart_from_reserved([str(c) for c in frame.columns])
        frame.columns = names
    else:
        encoding = _resolve_encoding(path, head, encoding or "utf-8", option_prefix)
        _refuse_non_text(path, head, encoding, option_prefix)
        if delimiter is not None:
            problem = delimiter_problem(delimiter)
            if problem:
                raise InputFileError(f"{path}: delimiter {delimiter!r} ({option_prefix}delimiter or read.delimiter "
                                     f"in the mapping) {problem}")
        frame, delimiter, renamed = _read_csv(path, delimiter, encoding, option_prefix)
        used = {"delimiter": delimiter, "encoding": encoding}
    if frame.empty:
        raise InputFileError(f"{path}: has a header but no data rows")
    frame.insert(0, SOURCE_ROW, pd.RangeIndex(1, len(frame) + 1))
    frame.attrs.update(used, renamed=renamed)
    return frame


def delimiter_problem(delimiter) -> str | None:
    """Why ``delimiter`` cannot split a CSV file, or None when it can."""
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        return "must be exactly one character, such as , ; | or \\t"
    if delimiter in "\"\r\n" or delimiter.isalnum():
        return "cannot be a quote, a line break, a letter or a digit"
    return None


def encoding_problem(encoding) -> str | None:
    """Why ``encoding`` cannot decode text, or None when Python knows it as a text encoding."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError):
        return "is not an encoding Python knows; use one such as utf-8, cp1252, latin-1 or utf-16"
    if not info._is_text_encoding:  # base64, zlib, rot13: codecs, but not character encodings
        return "is not a text encoding; use one such as utf-8, cp1252, latin-1 or utf-16"
    return None


def _resolve_encoding(path: Path, head: bytes, encoding: str, prefix: str) -> str:
    """The encoding to read ``path`` with: the byte-order mark's if there is one, else ``encoding``."""
    problem = encoding_problem(encoding)
    if problem:
        raise InputFileError(f"{path}: encoding {encoding!r} ({prefix}encoding or read.encoding in the mapping) "
                             f"{problem}")
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    canonical = codecs.lookup(encoding).name
    if canonical.startswith(("utf-16", "utf-32")):
        if b"\x00" not in head:
            raise InputFileError(f"{path}: was to be read as {encoding} ({prefix}encoding), but it has no byte-order "
                                 f"mark and no NUL bytes, so it is not {canonical}; try utf-8 or cp1252")
        if canonical in ("utf-16", "utf-32"):  # no mark: a NUL byte first means big-endian
            return canonical + ("-be" if head[:1] == b"\x00" else "-le")
    elif not canonical.startswith("utf-8") and max(head, default=0) >= 0x80:
        # Non-ASCII text that is valid UTF-8 is UTF-8 (cp1252 text almost never is): reading it as cp1252
        # would turn "Société" into "SociÃ©tÃ©" without a word.
        try:
            text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            return encoding
        line = next(i for i, t in enumerate(text.splitlines(), 1) if not t.isascii())
        word = next(w for w in text.splitlines()[line - 1].split() if not w.isascii())[:40]
        raise InputFileError(f"{path}: line {line}: was to be read as {encoding} ({prefix}encoding or read.encoding), "
                             f"but its text is UTF-8 (e.g. {word!r}); read it as utf-8")
    return encoding


def _refuse_non_text(path: Path, head: bytes, encoding: str, prefix: str) -> None:
    """One line saying what the file is, when it is an image, an archive, a workbook, JSON or binary."""
    for signature, what in _NOT_CSV:
        if head.startswith(signature):
            raise InputFileError(f"{path}: is {what}")
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    if not wide and b"\x00" in head:
        at = head.index(b"\x00")
        line = head.count(b"\n", 0, at) + 1
        pairs = head[: len(head) - len(head) % 2]
        utf16 = pairs and (pairs[1::2].count(0) > len(pairs) // 4 or pairs[0::2].count(0) > len(pairs) // 4)
        guess = (f"it looks like UTF-16 without a byte-order mark: pass {prefix}encoding utf-16-le "
                 "(or utf-16-be)" if utf16 else "it is a binary file, not CSV text")
        raise InputFileError(f"{path}: line {line}: holds NUL bytes; {guess}")
    text = head.decode(_codec(encoding), errors="replace").lstrip()
    if text.startswith("{") or (text.startswith("[") and text[1:].lstrip()[:1] in ('{', '[', '"', "]", "")):
        raise InputFileError(
            f"{path}: looks like JSON (it starts with {text[0]!r}), not CSV: tbml reads CSV or Parquet; convert "
            f"it first, e.g. pandas.read_json(path).to_csv('file.csv', index=False) (lines=True for JSON Lines)")
    if text[:1] == "<" and text[:15].lower().startswith(("<!doctype", "<html", "<?xml", "<table", "<head")):
        raise InputFileError(f"{path}: looks like HTML or XML (it starts with {text[:15]!r}), not CSV: "
                             "if it was downloaded, the download may have failed")


def _apart_from_reserved(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """``names`` with those that clash with tbml's own columns prefixed (again, until unique), and the renames."""
    taken = set(names)
    renamed: dict[str, str] = {}
    out = []
    for name in names:
        if name in RESERVED_COLUMNS:
            new = KEPT_PREFIX + name
            while new in taken:
                new = KEPT_PREFIX + new
            taken.add(new)
            renamed[name] = new
            name = new
        out.append(name)
    return out, renamed


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputFileError(f"{path}: not a readable Parquet file ({exc})".replace("\n", " ")) from None
    if frame.columns.duplicated().any():
        name = frame.columns[frame.columns.duplicated()][0]
        raise InputFileError(f"{path}: column name {name!r} appears twice")
    return frame


def _read_csv(path: Path, delimiter: str | None, encoding: str, prefix: str) -> tuple[pd.DataFrame, str, dict]:
    header, delimiter = _read_header(path, delimiter, encoding, prefix)
    header, renamed = _apart_from_reserved(header)
    malformed: list[str] = []

    def keep_aside(row) -> str:
        malformed.append(row.text)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, encoding=_arrow_codec(encoding),
                                           block_size=_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=keep_aside
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                # only an empty cell is null: "NA" is Namibia, and "NULL" is kept as written for quarantine
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except UnicodeError:
        raise InputFileError(_encoding_message(path, encoding, prefix)) from None
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "UTF-8" in str(exc):
            raise InputFileError(_encoding_message(path, encoding, prefix)) from None
        if "straddl" not in str(exc):
            raise InputFileError(f"{path}: cannot parse as CSV ({exc})".replace("\n", " ")) from None
        malformed.append("a row longer than a block")  # the Python reader takes rows of any length
    if malformed:
        # Rare: redo the read exactly in Python so every row keeps its true row number.
        return _read_csv_exact(path, header, delimiter, encoding, prefix), delimiter, renamed
    return table.to_pandas(), delimiter, renamed


def _codec(encoding: str) -> str:
    """The Python codec for reading ``encoding``: UTF-8 in any spelling reads past a byte-order mark."""
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def _arrow_codec(encoding: str) -> str:
    """pyarrow reads UTF-8 itself (past a byte-order mark) and transcodes anything else through Python."""
    return "utf8" if codecs.lookup(encoding).name == "utf-8" else encoding


def _read_header(path: Path, delimiter: str | None, encoding: str, prefix: str) -> tuple[list[str], str]:
    try:
        with open(path, encoding=_codec(encoding), newline="") as handle:
            first = handle.readline(MAX_FIELD_CHARS)
    except UnicodeError:
        raise InputFileError(_encoding_message(path, encoding, prefix)) from None
    if not first.strip():
        raise InputFileError(f"{path}: line 1: the header line is empty")
    if delimiter is None:
        delimiter = max(_DELIMITERS, key=first.count)
    try:
        header = [name.strip() for name in next(csv.reader([first], delimiter=delimiter))]
    except (csv.Error, StopIteration) as exc:
        raise InputFileError(f"{path}: line 1: cannot read the header ({exc})") from None
    if len(header) == 1 and (other := max(_DELIMITERS, key=first.count)) != delimiter and first.count(other):
        raise InputFileError(f"{path}: line 1: the header holds no {delimiter!r} ({prefix}delimiter or read.delimiter) "
                             f"but {first.count(other)} {other!r}: is {other!r} the delimiter?")
    if any(not name for name in header):
        raise InputFileError(f"{path}: line 1: column {header.index('') + 1} has no name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputFileError(f"{path}: line 1: column name {name!r} appears twice")
        seen.add(name)
    return header, delimiter


def _read_csv_exact(path: Path, header: list[str], delimiter: str, encoding: str, prefix: str) -> pd.DataFrame:
    records: list[list[str | None]] = []
    texts: list[str | None] = []
    # Deliberately above the csv module's default of 131,072 characters: a long description is data.
    csv.field_size_limit(MAX_FIELD_CHARS)
    with open(path, encoding=_codec(encoding), newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            next(reader)
            for fields in reader:
                if not fields:
                    continue  # blank line: pyarrow skips these too
                if len(fields) == len(header):
                    records.append([value if value != "" else None for value in fields])
                    texts.append(None)
                else:
                    buffer = io.StringIO()
                    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(fields)
                    records.append([None] * len(header))
                    opened = any("\n" in value for value in fields)  # only a quote spans lines
                    why = "; a cell spans lines: if a quote was left open, the lines after it are in this row" if opened else ""
                    texts.append(f"{buffer.getvalue()}  [{len(fields)} fields, expected {len(header)}{why}]")
        except UnicodeError:
            raise InputFileError(_encoding_message(path, encoding, prefix)) from None
        except csv.Error as exc:
            row = len(records) + 1
            if "field limit" in str(exc):
                raise InputFileError(
                    f"{path}: row {row} (line {reader.line_num}): a cell is longer than {MAX_FIELD_CHARS:,} "
                    "characters, the most tbml reads; a quote left open makes the rest of the file one cell") from None
            raise InputFileError(f"{path}: row {row} (line {reader.line_num}): cannot parse as CSV ({exc})") from None
    frame = pd.DataFrame(records, columns=header, dtype="string")
    frame[MALFORMED_TEXT] = pd.Series(texts, dtype="string")
    return frame


def _encoding_message(path: Path, encoding: str, prefix: str = "--") -> str:
    data = path.read_bytes()
    try:
        data.decode(_codec(encoding))
        return f"{path}: text is not valid {encoding}"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        snippet = data[max(0, exc.start - 15) : exc.start + 5]
        guess = ""
        for other, name in (("utf-8", "UTF-8"), ("cp1252", "cp1252 (Windows Latin-1)")):
            if codecs.lookup(other).name == codecs.lookup(encoding).name:
                continue
            try:
                data.decode(other)
            except UnicodeDecodeError:
                continue
            guess = f"; it decodes as {name}: pass {prefix}encoding {other} or set read.encoding in the mapping"
            break
        return f"{path}: line {line}: bytes {snippet!r} are not valid {encoding}{guess}"
    except UnicodeError as exc:
        return f"{path}: text is not valid {encoding} ({exc})"


# Configs, mappings, rules and batch jobs are hand-written and small. The caps refuse a hostile file (a YAML
# "billion laughs": a kilobyte of nested aliases that expands to gigabytes) before it costs memory or time.
YAML_MAX_BYTES = 4 << 20
YAML_MAX_ALIASES = 100
YAML_MAX_EXPANSION = 100_000  # nodes aliases may add beyond those written in the file


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses more than ``YAML_MAX_ALIASES`` alias uses while composing."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases_used = getattr(self, "aliases_used", 0) + 1
            if self.aliases_used > YAML_MAX_ALIASES:
                raise _TooLarge(f"more than {YAML_MAX_ALIASES} aliases (*name); write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        # PyYAML keeps the last of two equal keys: a threshold written twice must not pass in silence
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_scalar(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice",
                                                            key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


class _TooLarge(Exception):
    pass


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes the document holds once every alias is expanded; a node that contains itself
    (``&a [*a]``) is refused, since walking it never ends."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # iterative: a deep document must not exhaust Python's recursion
        node, done = stack.pop()
        key = id(node)
        if done:
            children = _children(node)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            on_path.discard(key)
            if sizes[key] > YAML_MAX_BYTES + YAML_MAX_EXPANSION:
                raise _TooLarge(f"aliases expand it to more than {YAML_MAX_EXPANSION:,} extra values")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise _TooLarge("an alias refers to a value that contains it (a loop)")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _written_size(root: yaml.Node) -> int:
    """How many distinct nodes the file writes (an alias adds none)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(_children(node))
    return len(seen)


def read_yaml(path: str | Path, error: type[Exception], what: str):
    """The YAML document at ``path`` ({} when empty); a missing, unreadable, malformed or hostile file (over
    ``YAML_MAX_BYTES``, or aliases past ``YAML_MAX_ALIASES`` uses or ``YAML_MAX_EXPANSION`` values) raises
    ``error`` in one line naming the file."""
    path = Path(path)
    try:
        if not path.exists():
            raise FileNotFoundError
        if not path.is_file():  # a folder, or a device or pipe that would never end
            raise error(f"{path}: {what} file is not a regular file")
        if path.stat().st_size > YAML_MAX_BYTES:
            raise error(f"{path}: {what} file is {path.stat().st_size:,} bytes; tbml reads YAML files of at most "
                        f"{YAML_MAX_BYTES:,} bytes")
        with open(path, "rb") as handle:
            text = handle.read(YAML_MAX_BYTES + 1).decode("utf-8-sig")
        loader = _BoundedLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return {}
            extra = _expanded_size(node) - _written_size(node)
            if extra > YAML_MAX_EXPANSION:
                raise _TooLarge(f"aliases expand it to more than {YAML_MAX_EXPANSION:,} extra values")
            return loader.construct_document(node) or {}
        finally:
            loader.dispose()
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except _TooLarge as exc:
        raise error(f"{path}: {what} file refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} file is not UTF-8 text (byte {exc.start + 1})") from None
    except RecursionError:
        raise error(f"{path}: {what} file is nested too deeply") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} file: {exc.strerror or exc}") from None


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    A crash part-way leaves the previous file (or none) in place, never half a file. A folder that cannot
    be made or written (a file in the way, no permission, a full disk) raises ``OutputError`` naming the
    path and the system's reason.
    """
    path = Path(path)
    blocker = _file_in_the_way(path.parent)
    if blocker is not None:
        raise OutputError(f"{path}: cannot write: {blocker} is a file, not a folder")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name to write")
    with output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            write(Path(tmp))
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide a report from the rest of the team
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


@contextmanager
def output_errors(path: str | Path):
    """Turn an ``OSError`` met while writing ``path`` into one ``OutputError`` line with the system's reason."""
    try:
        yield
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno == errno.ENOSPC:
            why = "no space left on device"
        raise OutputError(f"{path}: cannot write: {why}".replace("\n", " ")) from None


def output_dir(folder: str | Path, create: bool = True) -> Path:
    """``folder``, made if absent (unless ``create`` is false); a file in its place or above it is an
    ``OutputError``, not a traceback."""
    folder = Path(folder)
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        where = "is a file" if blocker == folder else f"{blocker} is a file, not a folder"
        raise OutputError(f"{folder}: cannot write outputs here: {where}")
    if create:
        with output_errors(folder):
            folder.mkdir(parents=True, exist_ok=True)
    return folder


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing path at or above ``folder`` when it is not a folder."""
    for above in (folder, *folder.parents):
        if above.exists() or above.is_symlink():
            return None if above.is_dir() else above
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def staging_dir(final: str | Path) -> Path:
    """A new empty folder beside ``final`` to write a whole set of outputs into before ``replace_dir``."""
    final = Path(final)
    output_dir(final.parent)
    with output_errors(final.parent):
        staged = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        os.chmod(staged, 0o777 & ~_umask())
    return staged


def replace_dir(staged: str | Path, final: str | Path) -> Path:
    """Put the finished folder ``staged`` in the place of ``final``.

    The old folder is first renamed aside, then the new one renamed in, then the old one removed: a reader
    sees the old set or the new set of files, never a mix. A crash between the two renames leaves the old
    folder whole under ``.NAME.previous``, and ``recover_dir`` puts it back.
    """
    staged, final = Path(staged), Path(final)
    previous = final.with_name(f".{final.name}.previous")
    if previous.exists():
        shutil.rmtree(previous)
    if final.exists():
        os.replace(final, previous)
    os.replace(staged, final)
    shutil.rmtree(previous, ignore_errors=True)
    return final


def recover_dir(final: str | Path) -> None:
    """Undo a ``replace_dir`` cut short: the previous folder back in place, unfinished staging removed."""
    final = Path(final)
    previous = final.with_name(f".{final.name}.previous")
    if previous.exists() and not final.exists():
        os.replace(previous, final)
    for staged in final.parent.glob(f".{final.name}.*.tmp"):
        shutil.rmtree(staged, ignore_errors=True)


def publish(staged: str | Path, final: str | Path, stale: tuple[str, ...] = (), last: str | None = None) -> None:
    """Move every file of the finished folder ``staged`` into ``final`` (a folder that may hold the user's
    own files), then remove those names of ``stale`` that this set did not bring, then move ``last`` (the
    manifest: it says which set is there). Each file arrives whole by rename; nothing is moved before
    every output was written, so a failed write leaves the previous set as it was."""
    staged, final = Path(staged), Path(final)
    names = sorted(p.name for p in staged.iterdir())
    with output_errors(final):
        for name in names:
            if name != last:
                os.replace(staged / name, final / name)
        for name in stale:
            if name not in names and (final / name).is_file() and not (final / name).is_symlink():
                (final / name).unlink()
        if last in names:
            os.replace(staged / last, final / last)
    shutil.rmtree(staged, ignore_errors=True)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = r"[+-]?\d+([.,]\d+)*([eE][+-]?\d+)?"


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula (starting with = + - @, tab or carriage return)
    get a leading apostrophe, as OWASP advises against CSV injection; plain numbers such as "-3" are left
    as they are. Column names are header cells and get the same treatment (a mapping may keep a source
    column named ``=HYPERLINK(...)``). Entity names and descriptions come from the files tbml reads:
    attacker-controlled."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        text = column.astype("string")
        risky = text.str.startswith(_FORMULA_START).fillna(False) & ~text.str.fullmatch(_PLAIN_NUMBER).fillna(False)
        if risky.any():
            out[name] = text.mask(risky, "'" + text)
    out.columns = [_neutral(str(name)) for name in out.columns]
    return out


def _neutral(text: str) -> str:
    risky = text.startswith(_FORMULA_START) and not re.fullmatch(_PLAIN_NUMBER, text)
    return "'" + text if risky else text


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV (formula-neutralised, see ``neutralise_formulas``), Parquet or JSON Lines
    (by suffix), atomically. Parquet and JSON Lines keep every value exactly: they are for programs."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        text = frame.to_json(orient="records", lines=True, date_format="iso")
        return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if suffix in (".parquet", ".pq"):
        table = pa.Table.from_pandas(frame, preserve_index=False)
        return write_atomic(path, lambda tmp: pq.write_table(table, tmp))
    table = pa.Table.from_pandas(neutralise_formulas(frame), preserve_index=False)
    return write_atomic(path, lambda tmp: pacsv.write_csv(table, tmp))


def write_json(obj, path: str | Path) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
