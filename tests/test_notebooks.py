"""The notebooks run end to end on small generated data (they are committed without outputs)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_and_they_hold_no_logic():
    assert [p.name for p in NOTEBOOKS] == ["1.0-explore-data.ipynb", "2.0-retrain-and-compare.ipynb",
                                           "3.0-investigate-an-alert.ipynb"]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
        assert "def " not in code and "class " not in code, path.name  # logic lives in tbml
        assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), f"{path.name} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
