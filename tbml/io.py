"""Read user files as they are, and write outputs atomically.

Reading never converts types: every CSV cell arrives as a string (or null), so validation can say exactly
which row and column was wrong, and a quarantined row can be written back as it was read.
"""

from __future__ import annotations

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
_DELIMITERS = (",", ";", "\t", "|")


def read_raw(path: str | Path, *, delimiter: str | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """Rows of a CSV or Parquet file, cells as strings for CSV, with a ``source_row`` column.

    CSV rows with the wrong number of fields are kept, not dropped: they come back with
    ``malformed_text`` set and every other cell null, for validation to quarantine.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: file not found")
    if path.is_dir():
        raise InputFileError(f"{path}: is a directory, expected a CSV or Parquet file")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: file is empty")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = _read_parquet(path)
    else:
        frame = _read_csv(path, delimiter, encoding)
    frame.insert(0, SOURCE_ROW, pd.RangeIndex(1, len(frame) + 1))
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFileError(f"{path}: not a readable Parquet file ({exc})") from None


def _read_csv(path: Path, delimiter: str | None, encoding: str) -> pd.DataFrame:
    header, delimiter = _read_header(path, delimiter, encoding)
    malformed: list[str] = []

    def keep_aside(row) -> str:
        malformed.append(row.text)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, encoding=encoding),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=keep_aside
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "UTF-8" in str(exc):
            raise InputFileError(_encoding_message(path, encoding)) from None
        raise InputFileError(f"{path}: cannot parse as CSV ({exc})".replace("\n", " ")) from None
    if malformed:
        # Rare: redo the read exactly in Python so every row keeps its true row number.
        return _read_csv_exact(path, header, delimiter, encoding)
    frame = table.to_pandas()
    if frame.empty:
        raise InputFileError(f"{path}: has a header but no data rows")
    return frame


def _codec(encoding: str) -> str:
    """The Python codec for reading ``encoding``: UTF-8 in any spelling reads past a byte-order mark."""
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _read_header(path: Path, delimiter: str | None, encoding: str) -> tuple[list[str], str]:
    try:
        with open(path, encoding=_codec(encoding), newline="") as handle:
            first = handle.readline()
    except UnicodeDecodeError:
        raise InputFileError(_encoding_message(path, encoding)) from None
    except LookupError:
        raise InputFileError(f"{path}: unknown encoding {encoding!r}") from None
    if not first.strip():
        raise InputFileError(f"{path}: line 1: the header line is empty")
    if delimiter is None:
        delimiter = max(_DELIMITERS, key=first.count)
    header = [name.strip() for name in next(csv.reader([first], delimiter=delimiter))]
    if any(not name for name in header):
        raise InputFileError(f"{path}: line 1: column {header.index('') + 1} has no name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputFileError(f"{path}: line 1: column name {name!r} appears twice")
        seen.add(name)
    return header, delimiter


def _read_csv_exact(path: Path, header: list[str], delimiter: str, encoding: str) -> pd.DataFrame:
    records: list[list[str | None]] = []
    texts: list[str | None] = []
    with open(path, encoding=_codec(encoding), newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
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
                texts.append(f"{buffer.getvalue()}  [{len(fields)} fields, expected {len(header)}]")
    frame = pd.DataFrame(records, columns=header, dtype="string")
    frame[MALFORMED_TEXT] = pd.Series(texts, dtype="string")
    return frame


def _encoding_message(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    try:
        data.decode(encoding)
        return f"{path}: text is not valid {encoding}"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        snippet = data[max(0, exc.start - 15) : exc.start + 5]
        guess = ""
        try:
            data.decode("cp1252")
            guess = "; it decodes as cp1252 (Windows Latin-1): pass --encoding cp1252 or set read.encoding in the mapping"
        except UnicodeDecodeError:
            pass
        return f"{path}: line {line}: bytes {snippet!r} are not valid {encoding}{guess}"


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
