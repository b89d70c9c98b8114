"""Both teaching notebooks run headless from top to bottom, and are committed clean."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

# Run again by .ci/run with oneDNN held to other instruction sets and with oneDNN off.
pytestmark = pytest.mark.numeric

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = ["Art_Generation_with_Neural_Style_Transfer.ipynb", "Your_own_images.ipynb"]


def test_the_notebook_folder_holds_exactly_the_documented_notebooks():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_small_and_without_outputs(name):
    path = NOTEBOOK_DIR / name
    assert path.stat().st_size < 1_000_000
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_without_errors(name):
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    text = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    if name.startswith("Art"):
        assert "conv4_2" in text and "(1, 38, 50," in text  # the graph's shapes were printed
        assert "J_content (first edition)" in text and "course 6.76559" in text
