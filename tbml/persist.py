"""Save a fitted ``TBMLModel`` to a folder, and load it back, in formats that run no code on load.

    model.json          config, thresholds, calibration, the detectors' fitted numbers
    price_reference.parquet, external_prices.parquet, kg_per_unit.parquet    reference tables
    forest.parquet      the isolation forest's trees as plain node arrays (``IsolationTrees``)
    rules.yaml, high_risk.json                                                 the rules and list used

Loading needs none of the training data. Nothing is pickled, and a model folder is read as untrusted
input: each file must be a regular file inside the folder (a link leading out of it, a FIFO or a device is
refused without being opened), no larger than its cap, and hold what tbml wrote, checked value by value;
the forest's trees are checked to be trees before anything walks them. Whatever is wrong is one
``TBMLError`` naming the file and what is wrong. Format 1 folders (the forest as ``forest.skops``) still load:
the forest is read with skops and goes through the same checks as plain arrays.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import tbml
from tbml.config import config_from_dict
from tbml.defaults import BUILTIN, resolve
from tbml.detectors.forest import TREE_COLUMNS, ForestDetector, IsolationTrees
from tbml.detectors.price import PriceDeviationDetector
from tbml.detectors.rules import load_rules
from tbml.errors import TBMLError
from tbml.features.pricing import KEY_COLUMNS, MEASURES

FORMAT = 2
READS = (1, 2)  # format 1 held the forest as skops (forest.skops); it is converted to plain arrays and checked
TRUSTED = ["sklearn.tree._tree.Tree"]  # format 1 only: what an IsolationForest holds beyond skops' defaults

MB = 1 << 20
# the most a file may hold: far above any model tbml writes, far below what would exhaust memory
LIMITS = {"model.json": 64 * MB, "rules.yaml": 4 * MB, "high_risk.json": 4 * MB, "forest.parquet": 512 * MB,
          "forest.skops": 512 * MB, "price_reference.parquet": 1024 * MB, "external_prices.parquet": 1024 * MB,
          "kg_per_unit.parquet": 256 * MB}
MAX_TABLE_BYTES = 4096 * MB  # a Parquet table once decompressed: a small file must not inflate without bound

# the columns of each table a model holds: "text", "whole" (integers), "number" (integers or floats)
_STATS = {"median": "number", "q1": "number", "q3": "number", "mad": "number", "medcouple": "number"}
TABLES = {
    "price_reference.parquet": {"measure": "text", "level": "whole", "count": "number", **_STATS, "source": "text"},
    "external_prices.parquet": {"hs": "text", "unit": "text", "origin": "text", "destination": "text",
                                "source": "text", **_STATS, "count": "number"},
    "kg_per_unit.parquet": {"hs6": "text", "unit": "text", "count": "number", "median": "number", "q1": "number",
                            "q3": "number"},
    "forest.parquet": {name: "number" if name == "threshold" else "whole" for name in TREE_COLUMNS},
}
FINITE = ("median", "q1", "q3")  # statistics a reference is useless without


def save_model(model, folder: str | Path) -> Path:
    """Write ``model`` (fitted) to ``folder``, which must not exist yet or be empty."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise TBMLError(f"{folder}: folder is not empty; choose a new one for the model")
    price, forest = model.price_, model.forest_
    price.reference_prices_.to_parquet(folder / "price_reference.parquet")
    if price.external_prices_ is not None:
        price.external_prices_.to_parquet(folder / "external_prices.parquet")
    model.kg_per_unit_.to_parquet(folder / "kg_per_unit.parquet")
    trees = forest.forest_
    pq.write_table(pa.table({name: pa.array(values) for name, values in trees.to_arrays().items()}),
                   folder / "forest.parquet")
    shutil.copyfile(resolve(model.config.reconciliation.rules, "rules.yaml"), folder / "rules.yaml")
    (folder / "high_risk.json").write_text(json.dumps(sorted(model.high_risk_)))
    state = {
        "format": FORMAT,
        "tbml_version": tbml.__version__,
        "config": model.config.to_dict(),
        "typical_value": model.typical_value_,
        "drift_reference": model.drift_reference_,
        "forest_quantiles": model.forest_quantiles_.tolist(),
        "price": {"params": {k: v for k, v in price.get_params().items() if k != "reference_prices"},
                  "min_group_size": price.min_group_size_, "levels": [list(level) for level in price.levels_],
                  "base_keys": list(price._base_keys_), "offset": price.offset_,
                  "feature_names_in": [str(c) for c in price.feature_names_in_]},
        "forest": {"params": forest.get_params(), "features": list(forest.features_),
                   "center": forest.center_.tolist(), "scale": forest.scale_.tolist(), "offset": forest.offset_,
                   "feature_names_in": [str(c) for c in forest.feature_names_in_],
                   "max_samples": trees.max_samples},
    }
    if getattr(model, "supervised_", None) is not None:
        model.supervised_.save(folder / "supervised")
        state["supervised"] = model.supervised_.trained_on_
    (folder / "model.json").write_text(json.dumps(state, indent=1, default=_plain))
    return folder


def load_model(folder: str | Path):
    """The ``TBMLModel`` saved in ``folder``; a ``TBMLError`` naming the file if any part is missing or wrong."""
    from tbml.model import TBMLModel  # the model module imports this one

    folder = Path(folder)
    if not folder.is_dir() or not os.path.lexists(folder / "model.json"):
        raise TBMLError(f"{folder}: not a saved tbml model (no model.json)")
    where = folder / "model.json"
    state = model_json(folder, "model.json")
    if not isinstance(state, dict):
        raise TBMLError(f"{where}: expected a JSON object, got {type(state).__name__}")
    if state.get("format") not in READS:
        raise TBMLError(f"{where}: model format {state.get('format')!r} is not one this tbml reads "
                        f"({', '.join(map(str, READS))})")
    state = _Checked(state, where)
    config = config_from_dict(state.get("config", dict), str(where))
    for section, key in (("ingest", "fx_rates"), ("pricing", "reference_prices")):
        _refuse_special_file(getattr(getattr(config, section), key), f"{where}: config {section}.{key}")
    # the rules and jurisdiction list travel with the model, so the model scores the same anywhere
    config = dataclasses.replace(config, reconciliation=dataclasses.replace(
        config.reconciliation, rules=str(folder / "rules.yaml"), high_risk_jurisdictions=str(folder / "high_risk.json")))
    model = TBMLModel(config)
    read_model_file(folder, "rules.yaml")  # a regular file inside the folder, of a sane size, before the YAML reader opens it
    model.rules_ = load_rules(folder / "rules.yaml")
    model.high_risk_ = _high_risk(folder)
    model.typical_value_ = state.get("typical_value", _finite)
    model.drift_reference_ = _drift_reference(state)
    quantiles = np.asarray(state.get("forest_quantiles", _numbers), dtype=float)
    if not len(quantiles) or np.any(np.diff(quantiles) < 0):
        raise TBMLError(f"{where}: forest_quantiles must be a non-empty rising list of numbers")
    model.forest_quantiles_ = quantiles
    model.kg_per_unit_ = _table(folder, "kg_per_unit.parquet")
    model.price_ = _price(folder, state)
    model.forest_ = _forest(folder, state)
    if state.values.get("supervised") is not None:  # a ranker learned from labels (tbml.supervised)
        part = folder / "supervised"
        if part.is_symlink() or not part.is_dir():
            raise TBMLError(f"{where}: says the model learned from labels, but {part} is not a folder")
        from tbml.supervised import SupervisedRanker

        model.supervised_ = SupervisedRanker.load(part)
    return model


# ---- the parts ------------------------------------------------------------------------------------------

def _price(folder: Path, state: _Checked) -> PriceDeviationDetector:
    p = state.section("price")
    params = p.get("params", dict)
    known = PriceDeviationDetector().get_params()
    for name, value in params.items():
        check = PRICE_PARAMS.get(name)
        if check is None or not check[0](value):
            raise TBMLError(f"{p.where}: price params {name}: " + (
                f"not a parameter of the price detector (known: {', '.join(sorted(known))})" if check is None
                else f"expected {check[1]}, got {value!r}"))
    params = dict(params)
    params["levels"] = tuple(tuple(level) for level in params["levels"]) if params.get("levels") else None
    if "measures" in params:
        params["measures"] = tuple(params["measures"])
    price = PriceDeviationDetector(**params)
    price.min_group_size_ = p.get("min_group_size", _positive_int)
    price.levels_ = tuple(tuple(level) for level in p.get("levels", _levels))
    price._base_keys_ = tuple(p.get("base_keys", _keys))
    price.offset_ = p.get("offset", _finite)
    price.feature_names_in_ = np.asarray(p.get("feature_names_in", _texts), dtype=object)
    price.n_features_in_ = len(price.feature_names_in_)
    keys = set(price._base_keys_).union(*price.levels_)
    price.reference_prices_ = _table(folder, "price_reference.parquet", {key: "text" for key in keys})
    levels = price.reference_prices_["level"]
    if len(levels) and not levels.between(0, len(price.levels_) - 1).all():
        raise TBMLError(f"{folder / 'price_reference.parquet'}: column 'level' must be 0 to {len(price.levels_) - 1}, "
                        "one per peer-group level of model.json")
    price.external_prices_ = _table(folder, "external_prices.parquet", required=False)
    return price


def _forest(folder: Path, state: _Checked) -> ForestDetector:
    f = state.section("forest")
    params = dict(f.get("params", dict))
    for name, value in params.items():
        check = FOREST_PARAMS.get(name)
        if check is None or not check[0](value):
            raise TBMLError(f"{f.where}: forest params {name}: " + (
                "not a parameter of the forest detector" if check is None else f"expected {check[1]}, got {value!r}"))
    params["features"] = tuple(params["features"]) if params.get("features") is not None else None
    forest = ForestDetector(**params)
    forest.features_ = tuple(f.get("features", _texts))
    forest.center_ = np.asarray(f.get("center", _numbers), dtype=float)
    forest.scale_ = np.asarray(f.get("scale", _numbers), dtype=float)
    if not len(forest.center_) == len(forest.scale_) == len(forest.features_):
        raise TBMLError(f"{f.where}: forest features, center and scale must be as long as each other")
    if np.any(forest.scale_ <= 0):
        raise TBMLError(f"{f.where}: forest scale must be positive")
    forest.offset_ = f.get("offset", _finite)
    forest.feature_names_in_ = np.asarray(f.get("feature_names_in", _texts), dtype=object)
    forest.n_features_in_ = len(forest.feature_names_in_)
    n_features = len(forest.features_)
    if state.get("format", int) == 1:
        forest.forest_ = _skops_forest(folder, n_features)
    else:
        path = folder / "forest.parquet"
        table = _table(folder, "forest.parquet")
        try:
            forest.forest_ = IsolationTrees.from_arrays({name: table[name].to_numpy() for name in TREE_COLUMNS},
                                                        f.get("max_samples", _positive_int), n_features)
        except ValueError as exc:
            raise TBMLError(f"{path}: not a forest of isolation trees: {exc}") from None
    return forest


def _skops_forest(folder: Path, n_features: int) -> IsolationTrees:
    """The trees of a format 1 ``forest.skops``, checked as plain arrays are."""
    import skops.io as sio
    from sklearn.ensemble import IsolationForest

    path = folder / "forest.skops"
    data = read_model_file(folder, "forest.skops")
    try:
        loaded = sio.loads(data, trusted=TRUSTED)
    except Exception as exc:  # noqa: BLE001 - skops and zipfile raise many kinds; the user needs one line
        raise TBMLError(f"{path}: not a readable skops file ({type(exc).__name__})") from None
    if type(loaded) is not IsolationForest:
        raise TBMLError(f"{path}: holds a {type(loaded).__name__}, not an IsolationForest")
    try:
        if getattr(loaded, "n_features_in_", None) != n_features:
            raise ValueError(f"it was fitted on {getattr(loaded, 'n_features_in_', None)!r} features, "
                             f"model.json names {n_features}")
        if not all(type(e).__name__ == "ExtraTreeRegressor" and type(e.tree_).__name__ == "Tree"
                   for e in loaded.estimators_):
            raise ValueError("its estimators are not extra-tree regressors")
        return IsolationTrees.from_sklearn(loaded)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise TBMLError(f"{path}: not a forest of isolation trees: {exc}".replace("\n", " ")) from None


def _high_risk(folder: Path) -> frozenset[str]:
    codes = model_json(folder, "high_risk.json")
    if not isinstance(codes, list) or not all(isinstance(c, str) and 0 < len(c) <= 64 for c in codes):
        raise TBMLError(f"{folder / 'high_risk.json'}: expected a JSON list of country codes (text)")
    return frozenset(codes)


def _drift_reference(state: _Checked) -> dict:
    d = state.section("drift_reference")
    shares = d.get("hs2_shares", dict)
    if not all(isinstance(k, str) and _finite(v) for k, v in shares.items()):
        raise TBMLError(f"{d.where}: drift_reference hs2_shares must map chapters to numbers")
    edges, value_shares = d.get("value_edges", _numbers), d.get("value_shares", _numbers)
    if np.any(np.diff(edges) < 0) or len(value_shares) != len(edges) + 1:
        raise TBMLError(f"{d.where}: drift_reference value_edges must rise, with one more value share than edges")
    return {"hs2_shares": dict(shares), "value_edges": list(edges), "value_shares": list(value_shares)}


# ---- values in model.json ----------------------------------------------------------------------------

def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2**31


def _texts(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _numbers(value) -> bool:
    return isinstance(value, list) and all(_finite(v) for v in value)


def _keys(value) -> bool:
    return _texts(value) and set(value) <= set(KEY_COLUMNS)


def _levels(value) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(_keys(level) for level in value)


def _one_of(*choices):
    return lambda value: isinstance(value, str) and value in choices


def _share_or_auto(value) -> bool:
    return value == "auto" or (_finite(value) and 0 < value <= 0.5)


_WHAT = {dict: "a JSON object", _finite: "a finite number", _positive_int: "a positive whole number",
         _texts: "a list of texts", _numbers: "a list of finite numbers", _keys: f"a list of {', '.join(KEY_COLUMNS)}",
         _levels: "a non-empty list of lists of peer keys"}

PRICE_PARAMS = {
    "levels": (lambda v: v is None or _levels(v), "null or a list of lists of peer keys"),
    "period": (_one_of("month", "quarter", "year"), "month, quarter or year"),
    "min_group_size": (lambda v: v == "auto" or _positive_int(v), "'auto' or a positive whole number"),
    "measures": (lambda v: _texts(v) and set(v) <= set(MEASURES), f"a list of {', '.join(MEASURES)}"),
    "skew_adjusted": (lambda v: isinstance(v, bool), "true or false"),
    "threshold": (lambda v: _finite(v) and v > 0, "a positive number"),
    "min_spread": (lambda v: _finite(v) and v >= 0, "a number >= 0"),
    "specific_peer_z": (lambda v: _finite(v) and v >= 0, "a number >= 0"),
    "contamination": (_share_or_auto, "'auto' or a share in (0, 0.5]"),
    "reporting_currency": (lambda v: isinstance(v, str) and len(v) == 3, "a currency code"),
    "cif_fob_margin": (lambda v: _finite(v) and v >= 0, "a number >= 0"),
}
FOREST_PARAMS = {
    "features": (lambda v: v is None or _texts(v), "null or a list of texts"),
    "n_estimators": (_positive_int, "a positive whole number"),
    "max_samples": (lambda v: v == "auto" or _positive_int(v) or (_finite(v) and 0 < v <= 1), "'auto' or a size"),
    "contamination": (_share_or_auto, "'auto' or a share in (0, 0.5]"),
    "random_state": (lambda v: v is None or isinstance(v, int) and not isinstance(v, bool), "null or a whole number"),
}


class _Checked:
    """A JSON object of model.json whose values are taken only once checked: ``get(key, check)``."""

    def __init__(self, values: dict, where: Path, prefix: str = ""):
        self.values, self.where, self.prefix = values, where, prefix

    def get(self, key: str, check):
        if key not in self.values:
            raise TBMLError(f"{self.where}: no {self.prefix}{key}")
        value = self.values[key]
        if not (isinstance(value, check) if isinstance(check, type) else check(value)):
            what = _WHAT.get(check, getattr(check, "__name__", "the right kind of value"))
            raise TBMLError(f"{self.where}: {self.prefix}{key} must be {what}, got {_short(value)}")
        return value

    def section(self, key: str) -> _Checked:
        return _Checked(self.get(key, dict), self.where, f"{self.prefix}{key}.")


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse_special_file(spec, where: str) -> None:
    """A file a config names must be a regular file if it exists: reading a FIFO would hang the scorer."""
    if spec is None or str(spec) == BUILTIN:
        return
    try:
        info = os.stat(spec)
    except (OSError, ValueError):
        return  # absent here (a path on the trainer's machine): whoever reads it says so
    if not stat.S_ISREG(info.st_mode):
        raise TBMLError(f"{where} names {spec}, which is {_kind(info.st_mode)}, not a regular file")


# ---- files ---------------------------------------------------------------------------------------------

def read_model_file(folder: Path, name: str, required: bool = True) -> bytes | None:
    """The bytes of ``folder/name``: a regular file inside ``folder`` (a link may point within it), at most
    ``LIMITS[name]`` bytes. A FIFO or device is refused from its ``lstat``, never opened."""
    path = folder / name
    limit = LIMITS[name]
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            target = Path(os.path.realpath(path))
            if not target.is_relative_to(Path(os.path.realpath(folder))):
                raise TBMLError(f"{path}: a link to {target}, outside the model folder; a model is read only "
                                "from its own folder")
            info = os.stat(path)
    except FileNotFoundError:
        if not required:
            return None
        raise TBMLError(f"{path}: missing (or a broken link); a saved tbml model holds this file") from None
    except OSError as exc:
        raise TBMLError(f"{path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise TBMLError(f"{path}: {_kind(info.st_mode)}, not a regular file; a saved tbml model holds only files")
    if info.st_size > limit:
        raise TBMLError(f"{path}: {info.st_size:,} bytes, more than the {limit:,} a model's {name} may hold")
    try:
        # O_NONBLOCK: should the file have been swapped for a FIFO since lstat, opening it does not wait
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise TBMLError(f"{path}: cannot be read ({exc.strerror})") from None
    with open(handle, "rb", closefd=True) as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise TBMLError(f"{path}: not a regular file; a saved tbml model holds only files")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise TBMLError(f"{path}: more than the {limit:,} bytes a model's {name} may hold")
    return data


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return "not a file"


def model_json(folder: Path, name: str = "model.json", data: bytes | None = None):
    """The JSON document ``folder/name`` (or ``data`` read from it), checked as ``read_model_file`` does."""
    data = read_model_file(folder, name) if data is None else data
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        detail = str(exc).splitlines()[0][:120] if not isinstance(exc, RecursionError) else "nested too deeply"
        raise TBMLError(f"{folder / name}: not valid JSON ({detail})") from None


def _table(folder: Path, name: str, extra: dict | None = None, required: bool = True) -> pd.DataFrame | None:
    """The Parquet table ``folder/name`` with the columns ``TABLES[name]`` and ``extra``, each of its kind."""
    path = folder / name
    data = read_model_file(folder, name, required)
    if data is None:
        return None
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        meta = parquet.metadata
        inflated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if inflated > MAX_TABLE_BYTES:
            raise TBMLError(f"{path}: would take {inflated:,} bytes once read, more than a model's table may")
        table = parquet.read()
    except TBMLError:
        raise
    except Exception as exc:  # noqa: BLE001 - Arrow raises many kinds for a damaged file; the user needs one line
        raise TBMLError(f"{path}: not a readable Parquet file ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    expected = {**TABLES[name], **(extra or {})}
    for column, kind in expected.items():
        if column not in table.column_names:
            raise TBMLError(f"{path}: no column {column!r}; a model's {name} has {', '.join(expected)}")
        field = table.schema.field(column)
        if not _of_kind(field.type, kind):
            raise TBMLError(f"{path}: column {column!r} holds {field.type}, expected {kind}")
    unknown = [c for c in table.column_names if c not in expected and c not in KEY_COLUMNS]
    if unknown or len(set(table.column_names)) != len(table.column_names):
        raise TBMLError(f"{path}: unexpected column {(unknown or table.column_names)[0]!r}")
    for column, kind in expected.items():
        if kind == "text":
            continue
        values = table[column].to_numpy(zero_copy_only=False).astype(float)
        if np.isinf(values).any() or (column in FINITE or kind == "whole") and np.isnan(values).any():
            raise TBMLError(f"{path}: column {column!r} holds a value that is not a finite number")
    try:
        frame = table.to_pandas()
    except Exception as exc:  # noqa: BLE001 - pandas metadata written by hand can fail many ways
        raise TBMLError(f"{path}: cannot be read as a table ({type(exc).__name__})") from None
    if list(frame.columns) != table.column_names or len(frame) != table.num_rows:
        raise TBMLError(f"{path}: its pandas metadata does not match its columns")
    return frame


def _of_kind(arrow_type, kind: str) -> bool:
    if pa.types.is_null(arrow_type):  # a column with no value at all (an external table with no origins)
        return kind == "text"
    if kind == "text":
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if kind == "whole":
        return pa.types.is_integer(arrow_type)
    return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)


def _plain(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to model.json")
