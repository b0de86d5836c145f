"""Save a fitted ``TBMLModel`` to a folder, and load it back, in formats that run no code on load.

    model.json          config, thresholds, calibration, the detectors' fitted numbers
    price_reference.parquet, external_prices.parquet, kg_per_unit.parquet    reference tables
    forest.skops        the isolation forest (skops; only sklearn's Tree type is trusted, by name)
    rules.yaml, high_risk.json                                                 the rules and list used

Loading needs none of the training data. Nothing is pickled.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio

import tbml
from tbml.config import config_from_dict
from tbml.detectors.forest import ForestDetector
from tbml.detectors.price import PriceDeviationDetector
from tbml.detectors.rules import load_rules
from tbml.defaults import resolve
from tbml.errors import TBMLError

FORMAT = 1
TRUSTED = ["sklearn.tree._tree.Tree"]  # what an IsolationForest holds beyond skops' default-trusted types


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
    sio.dump(forest.forest_, folder / "forest.skops")
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
                   "feature_names_in": [str(c) for c in forest.feature_names_in_]},
    }
    (folder / "model.json").write_text(json.dumps(state, indent=1, default=_plain))
    return folder


def load_model(folder: str | Path):
    """The ``TBMLModel`` saved in ``folder``."""
    from tbml.model import TBMLModel  # the model module imports this one

    folder = Path(folder)
    if not (folder / "model.json").exists():
        raise TBMLError(f"{folder}: not a saved tbml model (no model.json)")
    state = json.loads((folder / "model.json").read_text())
    if state.get("format") != FORMAT:
        raise TBMLError(f"{folder}: model format {state.get('format')} is not the {FORMAT} this tbml reads")
    config = config_from_dict(state["config"], str(folder / "model.json"))
    # the rules and jurisdiction list travel with the model, so the model scores the same anywhere
    config = dataclasses.replace(config, reconciliation=dataclasses.replace(
        config.reconciliation, rules=str(folder / "rules.yaml"), high_risk_jurisdictions=str(folder / "high_risk.json")))
    model = TBMLModel(config)
    model.rules_ = load_rules(folder / "rules.yaml")
    model.high_risk_ = frozenset(json.loads((folder / "high_risk.json").read_text()))
    model.typical_value_ = state["typical_value"]
    model.drift_reference_ = state["drift_reference"]
    model.forest_quantiles_ = np.asarray(state["forest_quantiles"])
    model.kg_per_unit_ = pd.read_parquet(folder / "kg_per_unit.parquet")

    p = state["price"]
    params = dict(p["params"])
    params["levels"] = tuple(tuple(level) for level in params["levels"]) if params.get("levels") else None
    params["measures"] = tuple(params["measures"])
    price = PriceDeviationDetector(**params)
    price.reference_prices_ = pd.read_parquet(folder / "price_reference.parquet")
    external = folder / "external_prices.parquet"
    price.external_prices_ = pd.read_parquet(external) if external.exists() else None
    price.min_group_size_ = p["min_group_size"]
    price.levels_ = tuple(tuple(level) for level in p["levels"])
    price._base_keys_ = tuple(p["base_keys"])
    price.offset_ = p["offset"]
    price.feature_names_in_ = np.asarray(p["feature_names_in"], dtype=object)
    price.n_features_in_ = len(price.feature_names_in_)
    model.price_ = price

    f = state["forest"]
    fparams = dict(f["params"])
    fparams["features"] = tuple(fparams["features"]) if fparams.get("features") is not None else None
    forest = ForestDetector(**fparams)
    forest.features_ = tuple(f["features"])
    forest.center_ = np.asarray(f["center"])
    forest.scale_ = np.asarray(f["scale"])
    forest.offset_ = f["offset"]
    forest.forest_ = sio.load(folder / "forest.skops", trusted=TRUSTED)
    forest.feature_names_in_ = np.asarray(f["feature_names_in"], dtype=object)
    forest.n_features_in_ = len(forest.feature_names_in_)
    model.forest_ = forest
    return model


def _plain(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to model.json")
