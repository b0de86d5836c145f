"""Read user files as they are, and write outputs atomically.

Reading never converts types: every CSV cell arrives as a string (or null), so validation can say exactly
which row and column was wrong, and a quarantined row can be written back as it was read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from tbml.errors import InputFileError

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


def read_yaml(path: str | Path, error: type[Exception], what: str):
    """The YAML document at ``path`` ({} when empty); a missing or malformed file raises ``error`` in one line."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    A crash part-way leaves the previous file (or none) in place, never half a file.
    """
    path = Path(path)
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def staging_dir(final: str | Path) -> Path:
    """A new empty folder beside ``final`` to write a whole set of outputs into before ``replace_dir``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
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


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = r"[+-]?\d+([.,]\d+)*([eE][+-]?\d+)?"


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula (starting with = + - @, tab or carriage return)
    get a leading apostrophe, as OWASP advises against CSV injection; plain numbers such as "-3" are left
    as they are. Entity names and descriptions come from the files tbml reads: attacker-controlled."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        text = column.astype("string")
        risky = text.str.startswith(_FORMULA_START).fillna(False) & ~text.str.fullmatch(_PLAIN_NUMBER).fillna(False)
        if risky.any():
            out[name] = text.mask(risky, "'" + text)
    return out


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
