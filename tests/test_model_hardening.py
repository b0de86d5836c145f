"""A tampered model folder is one line naming the file, never a crash, a hang or a silent misread.

A model trained once on 2,000 generated invoices is saved; each hostile folder is made from it by code
(a tree whose child points out of its arrays or back up the tree, a feature out of range, a NaN threshold,
a truncated Parquet file, garbage JSON, a link out of the folder, a FIFO...). The loads run in one child
process with a timeout, so a regression that segfaults or loops fails these tests instead of the suite.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tbml.detectors.forest import IsolationTrees
from tbml.detectors.rules import Rule, check_template, load_rules, render
from tbml.errors import ConfigError, TBMLError
from tbml.ingest import load_invoices, load_transfers
from tbml.io import write_table
from tbml.model import TBMLModel
from tbml.persist import load_model
from tbml.synth import generate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The model, the scikit-learn forest its trees came from, its data, and the folder it was saved to."""
    root = tmp_path_factory.mktemp("hardening")
    data = generate(2_000, seed=17, laundering_rate=0.05)
    write_table(data.invoices, root / "invoices.csv")
    write_table(data.transfers, root / "transfers.csv")
    invoices = load_invoices(root / "invoices.csv").accepted
    transfers = load_transfers(root / "transfers.csv").accepted
    seen = []
    original = IsolationTrees.from_sklearn.__func__

    def keep(cls, forest):
        seen.append(forest)
        return original(cls, forest)

    with mock.patch.object(IsolationTrees, "from_sklearn", classmethod(keep)):
        model = TBMLModel().fit(invoices, transfers)
    model.save(root / "model")
    invoices.head(300).to_parquet(root / "rows.parquet")
    return {"model": model, "sklearn": seen[-1], "invoices": invoices, "transfers": transfers, "root": root,
            "folder": root / "model"}


# ---- identical scores ---------------------------------------------------------------------------------

def test_tbml_walks_the_trees_to_scikit_learns_scores_to_the_last_bit(trained):
    forest = trained["model"].forest_
    matrix = forest._matrix(trained["invoices"])
    rng = np.random.default_rng(3)
    unusual = np.vstack([matrix * rng.normal(1, 3, matrix.shape), np.full((3, matrix.shape[1]), 1e300),
                         np.full((3, matrix.shape[1]), -1e300), np.zeros((1, matrix.shape[1]))])
    for X in (matrix, unusual):
        expected = trained["sklearn"].score_samples(X)
        assert np.array_equal(forest.forest_.score_samples(X), expected)
    assert forest.offset_ == trained["sklearn"].offset_ == -0.5


def test_a_saved_model_scores_as_it_did(trained):
    invoices, transfers = trained["invoices"], trained["transfers"]
    again = load_model(trained["folder"])
    pd.testing.assert_frame_equal(trained["model"].score(invoices, transfers).items,
                                  again.score(invoices, transfers).items)
    tables = {name: pq.read_table(trained["folder"] / "forest.parquet").schema.field(name).type
              for name in ("left", "threshold")}
    assert tables == {"left": pa.int64(), "threshold": pa.float64()}


def test_a_format_1_folder_with_a_skops_forest_still_loads_and_scores_the_same(trained, tmp_path):
    import skops.io as sio
    folder = _copy(trained, tmp_path / "v1")
    _make_format_1(folder, trained["sklearn"])
    again = load_model(folder)
    invoices = trained["invoices"]
    pd.testing.assert_frame_equal(trained["model"].score(invoices).items, again.score(invoices).items)
    assert sio.get_untrusted_types(file=folder / "forest.skops") == ["sklearn.tree._tree.Tree"]


def test_tree_checks_name_what_is_wrong():
    arrays = {"tree": [0, 0, 0], "left": [1, -1, -1], "right": [2, -1, -1], "feature": [0, -2, -2],
              "threshold": [0.5, -2.0, -2.0], "n_node_samples": [4, 1, 3]}
    IsolationTrees.from_arrays(arrays, 4, 1)
    for change, message in (({"left": [1, -1]}, "differ in length"), ({"left": [1.0, -1.0, -1.0]}, "whole numbers"),
                            ({"left": [2, -1, -1]}, "has children 2 and 2"), ({"left": [0, -1, -1]}, "has children 0"),
                            ({"right": [2, -1, 1]}, "tree 0 node 2 has children -1 and 1"),
                            ({"feature": [1, -2, -2]}, "splits on feature 1, outside the 1"),
                            ({"threshold": [np.inf, -2, -2]}, "not a finite number"),
                            ({"n_node_samples": [4, 2, 3]}, "holds 4 training lines"),
                            ({"tree": [0, 1, 1]}, "has children 1 and 2"), ({"tree": [1, 1, 1]}, "numbered 0, 1, 2")):
        with pytest.raises(ValueError, match=message):
            IsolationTrees.from_arrays({**arrays, **change}, 4, 1)
    with pytest.raises(ValueError, match="max_samples"):
        IsolationTrees.from_arrays(arrays, 0, 1)


# ---- the hostile folders ------------------------------------------------------------------------------

def _copy(trained, folder: Path) -> Path:
    shutil.copytree(trained["folder"], folder)
    return folder


def _make_format_1(folder: Path, forest) -> None:
    import skops.io as sio
    sio.dump(forest, folder / "forest.skops")
    (folder / "forest.parquet").unlink()
    state = json.loads((folder / "model.json").read_text())
    state["format"] = 1
    del state["forest"]["max_samples"]
    (folder / "model.json").write_text(json.dumps(state))


def _edit_trees(change):
    def tamper(folder, trained):
        table = pq.read_table(folder / "forest.parquet").to_pandas()
        changed = change(table)  # a new table, or None where the table was changed in place
        table = table if changed is None else changed
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), folder / "forest.parquet")
    return tamper


def _edit_json(name, change):
    def tamper(folder, trained):
        state = json.loads((folder / name).read_text())
        change(state)  # in place
        (folder / name).write_text(json.dumps(state))
    return tamper


def _edit_table(name, change):
    def tamper(folder, trained):
        frame = pd.read_parquet(folder / name)
        changed = change(frame)
        frame = frame if changed is None else changed
        frame.to_parquet(folder / name)
    return tamper


def _write(name, content):
    def tamper(folder, trained):
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return tamper


def _truncate(name):
    def tamper(folder, trained):
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    return tamper


def _fifo(name):
    def tamper(folder, trained):
        (folder / name).unlink()
        os.mkfifo(folder / name)
    return tamper


def _link_out(name):
    def tamper(folder, trained):
        outside = folder.parent / f"outside-{folder.name}-{name}"
        shutil.copyfile(folder / name, outside)  # a good file, but not the model's
        (folder / name).unlink()
        (folder / name).symlink_to(outside)
    return tamper


def _skops_tree(change):
    def tamper(folder, trained):
        import skops.io as sio
        forest = sio.loads(sio.dumps(trained["sklearn"]), trusted=["sklearn.tree._tree.Tree"])  # a copy
        change(forest.estimators_[0].tree_)
        _make_format_1(folder, forest)
    return tamper


def _set(path, value):
    def change(state):
        *parents, last = path.split(".")
        for key in parents:
            state = state[key]
        state[last] = value
    return change


def _drop(path):
    def change(state):
        *parents, last = path.split(".")
        for key in parents:
            state = state[key]
        del state[last]
    return change


def _rule_reason(reason):
    def tamper(folder, trained):
        text = (folder / "rules.yaml").read_text()
        start = text.index("reason:", text.index("paid_more_than_once"))
        end = text.index("\n", start)
        (folder / "rules.yaml").write_text(text[:start] + "reason: " + json.dumps(reason) + text[end:])
    return tamper


def _fifo_fx(folder, trained):
    fifo = folder.parent / f"fx-{folder.name}"
    os.mkfifo(fifo)
    _edit_json("model.json", _set("config.ingest.fx_rates", str(fifo)))(folder, trained)


def _left(i, value):
    def change(t):
        t.loc[i, "left"] = value
    return change


# (case, tampering, file named in the message, what the message says)
CASES = [
    # the trees: would segfault or loop in scikit-learn's Cython
    ("child out of range", _edit_trees(_left(0, 10**6)), "forest.parquet", "tree 0 node 0 has children 1000000"),
    ("child far negative", _edit_trees(_left(0, -(2**40))), "forest.parquet", "tree 0 node 0 has children"),
    ("child in the next tree", _edit_trees(
        lambda t: t.__setitem__("left", np.where(np.arange(len(t)) == 0, (t["tree"] == 0).sum(), t["left"]))),
     "forest.parquet", "a later node of the same tree"),
    ("cycle back to the root", _edit_trees(
        lambda t: t.__setitem__("left", np.where(t["left"] == t["left"].max(), 0, t["left"]))),
     "forest.parquet", "has children 0 and"),
    ("node its own child", _edit_trees(_left(2, 2)), "forest.parquet", "tree 0 node 2 has children 2"),
    ("two parents", _edit_trees(lambda t: t.__setitem__("right", np.where(
        np.arange(len(t)) == t["left"][0], t["right"][0], t["right"]))), "forest.parquet", "is the child of (0|2) nodes"),
    ("a leaf with one child", _edit_trees(
        lambda t: t.__setitem__("left", np.where(np.arange(len(t)) == np.flatnonzero(t["left"] == -1)[0], 1, t["left"]))),
     "forest.parquet", "has children"),
    ("feature too big", _edit_trees(lambda t: t.__setitem__("feature", np.where(t["left"] >= 0, t["feature"] + 10**4,
                                                                                   t["feature"]))),
     "forest.parquet", "splits on feature 1000"),
    ("feature negative", _edit_trees(lambda t: t.__setitem__("feature", np.where(t["left"] >= 0, -7, t["feature"]))),
     "forest.parquet", "splits on feature -7"),
    ("NaN threshold", _edit_trees(lambda t: t.__setitem__("threshold", np.where(t["left"] >= 0, np.nan,
                                                                                   t["threshold"]))),
     "forest.parquet", "not a finite number"),
    ("threshold as text", _edit_trees(lambda t: t.__setitem__("threshold", t["threshold"].astype(str))),
     "forest.parquet", "column 'threshold' holds"),
    ("feature as float", _edit_trees(lambda t: t.__setitem__("feature", t["feature"].astype(float) + 0.5)),
     "forest.parquet", "column 'feature' holds double"),
    ("no threshold column", _edit_trees(lambda t: t.drop(columns="threshold")),
     "forest.parquet", "no column 'threshold'"),
    ("trees interleaved", _edit_trees(lambda t: t.__setitem__("tree", t["tree"].to_numpy()[::-1].copy())),
     "forest.parquet", "numbered 0, 1, 2"),
    ("no trees", _edit_trees(lambda t: t.iloc[:0]), "forest.parquet", "no trees"),
    ("training lines made up", _edit_trees(lambda t: t.__setitem__("n_node_samples", t["n_node_samples"] * 2)),
     "forest.parquet", "training lines"),
    ("forest truncated", _truncate("forest.parquet"), "forest.parquet", "not a readable Parquet file"),
    ("forest missing", lambda folder, trained: (folder / "forest.parquet").unlink(), "forest.parquet", "missing"),
    ("forest max_samples 0", _edit_json("model.json", _set("forest.max_samples", 0)), "model.json",
     "forest.max_samples must be a positive whole number"),
    # a format 1 folder: the same checks on the skops forest
    ("skops child out of range", _skops_tree(lambda tree: tree.children_left.__setitem__(0, 10**6)),
     "forest.skops", "tree 0 node 0 has children 1000000"),
    ("skops cycle", _skops_tree(lambda tree: tree.children_right.__setitem__(0, 0)), "forest.skops",
     "tree 0 node 0 has children"),
    ("skops feature too big", _skops_tree(lambda tree: tree.feature.__setitem__(0, 999)), "forest.skops",
     "splits on feature 999"),
    ("skops garbage", lambda folder, trained: (_make_format_1(folder, trained["sklearn"]),
                                               (folder / "forest.skops").write_bytes(b"PK\x03\x04 not a zip")),
     "forest.skops", "not a readable skops file"),
    # model.json
    ("model.json garbage", _write("model.json", b"\x00\xff{{{ not json"), "model.json", "not valid JSON"),
    ("model.json a list", _write("model.json", "[1, 2]"), "model.json", "expected a JSON object"),
    ("model.json nested deep", _write("model.json", "[" * 200_000 + "]" * 200_000), "model.json",
     "not valid JSON|expected a JSON object"),
    ("model.json no forest", _edit_json("model.json", _drop("forest")), "model.json", "no forest"),
    ("model.json format 99", _edit_json("model.json", _set("format", 99)), "model.json", "model format 99"),
    ("center as text", _edit_json("model.json", _set("forest.center", "abc")), "model.json",
     "forest.center must be a list of finite numbers"),
    ("model.json empty", _write("model.json", "{}"), "model.json", "model format None"),
    ("center NaN", _write("model.json", '{"format": 2, "config": {}, "typical_value": 1, "drift_reference": '
                                        '{"hs2_shares": {}, "value_edges": [], "value_shares": [1]}, '
                                        '"forest_quantiles": [NaN]}'), "model.json", "forest_quantiles must be"),
    ("scale too short", _edit_json("model.json", lambda s: s["forest"]["scale"].pop()), "model.json",
     "as long as each other"),
    ("quantiles falling", _edit_json("model.json", lambda s: s["forest_quantiles"].reverse()), "model.json",
     "forest_quantiles"),
    ("price param unknown", _edit_json("model.json", _set("price.params.evil", 1)), "model.json",
     "price params evil: not a parameter"),
    ("price threshold text", _edit_json("model.json", _set("price.params.threshold", "1.5")), "model.json",
     "price params threshold: expected a positive number"),
    ("price levels unknown key", _edit_json("model.json", _set("price.levels", [["hs6", "__class__"]])),
     "model.json", "price.levels must be"),
    ("config wrong type", _edit_json("model.json", _set("config.forest.n_estimators", "many")), "model.json",
     "n_estimators: expected (int|a whole number)"),
    ("drift reference broken", _edit_json("model.json", _set("drift_reference.value_shares", [1])), "model.json",
     "value_edges must rise"),
    ("typical value infinite", _write("model.json", '{"format": 2, "config": {}, "typical_value": Infinity}'),
     "model.json", "typical_value must be a finite number"),
    ("model.json huge", lambda folder, trained: os.truncate(folder / "model.json", 65 << 20), "model.json",
     "bytes, more than"),
    ("model.json a folder", lambda folder, trained: ((folder / "model.json").unlink(),
                                                     (folder / "model.json").mkdir()), "model.json", "a folder"),
    ("model.json a FIFO", _fifo("model.json"), "model.json", "a FIFO"),
    ("model.json links out", _link_out("model.json"), "model.json", "outside the model folder"),
    ("fx rates a FIFO", _fifo_fx, "model.json", "config ingest.fx_rates names .* a FIFO"),
    # the tables
    ("price table truncated", _truncate("price_reference.parquet"), "price_reference.parquet",
     "not a readable Parquet file"),
    ("price table no median", _edit_table("price_reference.parquet", lambda f: f.drop(columns="median")),
     "price_reference.parquet", "no column 'median'"),
    ("price median as text", _edit_table("price_reference.parquet",
                                         lambda f: f.__setitem__("median", f["median"].astype(str))),
     "price_reference.parquet", "column 'median' holds"),
    ("price median infinite", _edit_table("price_reference.parquet",
                                          lambda f: f.__setitem__("median", np.inf)),
     "price_reference.parquet", "not a finite number"),
    ("price level out of range", _edit_table("price_reference.parquet", lambda f: f.__setitem__("level", 99)),
     "price_reference.parquet", "column 'level' must be 0 to 4"),
    ("price key missing", _edit_table("price_reference.parquet", lambda f: f.drop(columns="hs6")),
     "price_reference.parquet", "no column 'hs6'"),
    ("kg table is text", _write("kg_per_unit.parquet", "hs6,unit\n1,2\n"), "kg_per_unit.parquet",
     "not a readable Parquet file"),
    ("kg table a FIFO", _fifo("kg_per_unit.parquet"), "kg_per_unit.parquet", "a FIFO"),
    ("kg table links out", _link_out("kg_per_unit.parquet"), "kg_per_unit.parquet", "outside the model folder"),
    # rules and jurisdictions
    ("rules not YAML", _write("rules.yaml", "a: [b\n"), "rules.yaml", "not valid YAML"),
    ("rules a list", _write("rules.yaml", "- a\n- b\n"), "rules.yaml", "expected a mapping of rule names"),
    ("rule a string", _write("rules.yaml", "paid_more_than_once: yes please\n"), "rules.yaml",
     "rule paid_more_than_once: expected a mapping"),
    ("rules not UTF-8", _write("rules.yaml", b"\xff\xfe\x00r"), "rules.yaml", "cannot read the rules|not valid YAML|not UTF-8"),
    ("rule param text", _write("rules.yaml", "paid_more_than_once: {typology: x, severity: high, reason: r, "
                                             "min_full_payments: two}\n"), "rules.yaml",
     "parameter 'min_full_payments' must be a finite number"),
    ("reason reaches attributes", _rule_reason("{invoice_id.__class__.__mro__}"), "rules.yaml",
     "rule paid_more_than_once: reason field {invoice_id.__class__.__mro__} must be a plain name"),
    ("reason allocates", _rule_reason("{value:>999999999}"), "rules.yaml", "has a format other than"),
    ("rules a FIFO", _fifo("rules.yaml"), "rules.yaml", "a FIFO"),
    ("rules link out", _link_out("rules.yaml"), "rules.yaml", "outside the model folder"),
    ("high risk a dict", _write("high_risk.json", '{"IR": 1}'), "high_risk.json", "a JSON list of country codes"),
    ("high risk numbers", _write("high_risk.json", "[1, 2]"), "high_risk.json", "a JSON list of country codes"),
    ("high risk not JSON", _write("high_risk.json", "IR KP"), "high_risk.json", "not valid JSON"),
]

CHILD = textwrap.dedent("""
    import json, sys
    import pandas as pd
    from tbml.persist import load_model
    from tbml.errors import TBMLError
    rows = pd.read_parquet(sys.argv[1])
    for folder in sys.argv[2:]:
        print(json.dumps({"folder": folder, "started": True}), flush=True)
        try:
            model = load_model(folder)
            model.score(rows)
            outcome = {"loaded": True}
        except TBMLError as exc:
            outcome = {"error": type(exc).__name__, "message": str(exc)}
        except BaseException as exc:
            outcome = {"error": type(exc).__name__, "message": str(exc)[:300], "traceback": True}
        print(json.dumps({"folder": folder, **outcome}), flush=True)
""")


@pytest.fixture(scope="module")
def outcomes(trained):
    """Each hostile folder's load, in one child process: a crash or hang fails the cases, not the suite."""
    folders = []
    for number, (name, tamper, _, _) in enumerate(CASES):
        folder = _copy(trained, trained["root"] / f"case{number:02d}")
        tamper(folder, trained)
        folders.append(str(folder))
    try:
        ran = subprocess.run([sys.executable, "-c", CHILD, str(trained["root"] / "rows.parquet"), *folders],
                             capture_output=True, text=True, timeout=240, cwd=REPO)
        output, code = ran.stdout, ran.returncode
    except subprocess.TimeoutExpired as timeout:
        output, code = (timeout.stdout or b"").decode() if isinstance(timeout.stdout, bytes) else timeout.stdout or "", "hang"
    results = {}
    for line in output.splitlines():
        record = json.loads(line)
        results[record["folder"]] = record if "started" not in record else {"error": f"crashed or hung ({code})",
                                                                           "message": ""}
    return {name: results.get(folder, {"error": "never reached", "message": ""})
            for (name, *_), folder in zip(CASES, folders)}


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_a_tampered_folder_is_one_line_naming_the_file(case, outcomes):
    _, _, filename, message = next(c for c in CASES if c[0] == case)
    outcome = outcomes[case]
    assert "traceback" not in outcome and "loaded" not in outcome, outcome
    assert outcome["error"] in ("TBMLError", "ConfigError"), outcome
    text = outcome["message"]
    assert "\n" not in text and filename in text, text
    import re
    assert re.search(message, text), text


def test_a_link_within_the_folder_and_extra_files_are_fine(trained, tmp_path):
    folder = _copy(trained, tmp_path / "m")
    (folder / "kept").mkdir()
    (folder / "rules.yaml").rename(folder / "kept" / "rules.yaml")
    (folder / "rules.yaml").symlink_to(Path("kept") / "rules.yaml")
    (folder / "MODEL_CARD.md").write_text("# card")
    invoices = trained["invoices"].head(200)
    pd.testing.assert_frame_equal(load_model(folder).score(invoices).items, trained["model"].score(invoices).items)


def test_a_rule_missing_a_parameter_is_one_line_when_it_runs(trained, tmp_path):
    folder = _copy(trained, tmp_path / "m")
    text = (folder / "rules.yaml").read_text()
    (folder / "rules.yaml").write_text(text.replace("min_full_payments:", "unused_number:"))
    model = load_model(folder)
    with pytest.raises(ConfigError, match=r"rules.yaml: rule paid_more_than_once: needs the parameter "
                                          r"'min_full_payments'"):
        model.score(trained["invoices"], trained["transfers"])


# ---- reason templates ---------------------------------------------------------------------------------

@pytest.mark.parametrize("template", [
    "{x.__class__}", "{x.__class__.__init__.__globals__}", "{x[0]}", "{x!r}", "{x!s}", "{x:>999999999}",
    "{x:{y}}", "{x:.999f}", "{0}", "{}", "{x", "x}", "{x:%Y}", "{x:=^30}", "{x: <41}"])
def test_a_reason_template_may_not_reach_attributes_or_allocate(template, tmp_path):
    with pytest.raises(ValueError):
        check_template(template)
    path = tmp_path / "rules.yaml"
    path.write_text(f"round_amount: {{typology: structuring, severity: low, reason: {json.dumps(template)}}}\n")
    with pytest.raises(ConfigError, match=r"rules.yaml: rule round_amount: reason "):
        load_rules(path)


def test_plain_fields_and_numeric_formats_still_render():
    for template in ("{amount}", "{amount:,.0f}", "{fence:+.1f}", "{share:.1%}", "{amount:>12,.2f}", "{n:d}",
                     "{quantity_unit:per}", "per {quantity_unit}", "{{literal}} {amount}"):
        check_template(template)
    rule = Rule("weight_quantity_mismatch", "over_shipment", "medium",
                "{kg} kg per {quantity_unit}, {fence:+.1f} IQRs, {amount:,.0f} {currency}, {missing:,.0f}, {{x}}")
    text = render(rule, {"kg": 2.5, "quantity_unit": "NAR", "fence": 3.14159, "amount": 1234567.8, "currency": "USD"},
                  {})
    assert text == "2.5 kg per piece, +3.1 IQRs, 1,234,568 USD, ?, {x}"
    with pytest.raises(ValueError):
        render(Rule("round_amount", "structuring", "low", "{x.__class__}"), {"x": 1}, {})


def test_the_registry_describes_and_loads_a_folder_as_the_loader_reads_it(trained, tmp_path):
    from tbml import registry
    from tbml.io import sha256_file
    folder = trained["folder"]
    assert registry.describe(str(folder))["sha256"] == sha256_file(folder / "model.json")
    fifo = _copy(trained, tmp_path / "fifo")
    _fifo("model.json")(fifo, trained)
    for read in (registry.describe, registry.load):  # a FIFO is refused from its lstat: neither call waits
        with pytest.raises(TBMLError, match=r"model.json: a FIFO \(named pipe\), not a regular file"):
            read(str(fifo))
