"""The notebooks run end to end on small generated data (they are committed without outputs), draw their
figures, and leave nothing behind: no temporary folder, no file in the repository or where they ran."""

import os
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# the matplotlib figures each notebook must show
FIGURES = {"1.0-explore-data": 3, "2.0-retrain-and-compare": 1, "3.0-investigate-an-alert": 3}


def test_there_are_notebooks_and_they_hold_no_logic():
    assert [p.name for p in NOTEBOOKS] == ["1.0-explore-data.ipynb", "2.0-retrain-and-compare.ipynb",
                                           "3.0-investigate-an-alert.ipynb"]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
        assert "def " not in code and "class " not in code, path.name  # logic lives in tbml
        assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), f"{path.name} has outputs"
        assert "workspace.cleanup()" in book.cells[-1].source, path.name  # the last cell removes its folder


def _tree(root: Path) -> set[str]:
    """Every path under the repository but the virtual environment, git's folder and Python's caches."""
    skip = {".venv", ".git", "__pycache__", ".pytest_cache"}
    out = set()
    for folder, names, files in os.walk(root):
        names[:] = [n for n in names if n not in skip]
        out |= {os.path.relpath(os.path.join(folder, f), root) for f in files + names}
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_draws_and_leaves_nothing_behind(path, tmp_path, monkeypatch):
    here, scratch = tmp_path / "cwd", tmp_path / "tmp"
    here.mkdir()
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the kernel's temporary folders go here, to be counted
    system_tmp = {p.name for p in Path(tempfile.gettempdir()).glob("tbml-notebook-*")}
    repo_before = _tree(REPO)
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(here)}}).execute()
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= FIGURES[path.stem]
    assert list(scratch.iterdir()) == [] and list(here.iterdir()) == []
    assert {p.name for p in Path(tempfile.gettempdir()).glob("tbml-notebook-*")} == system_tmp
    assert _tree(REPO) == repo_before
