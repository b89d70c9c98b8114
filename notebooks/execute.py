"""Re-executes the teaching notebooks headless and saves them with their outputs.

    python notebooks/execute.py                         # all of them
    python notebooks/execute.py Your_own_images.ipynb   # one

Each notebook runs as ``tests/test_notebooks.py`` runs it: a fresh ``python3``
kernel started in ``notebooks/``, importing ``nst_tf`` from this checkout, with
whatever weights ``pretrained-model/`` holds (small synthetic ones when it holds
none; the notebooks say which). The outputs are then made fit to commit:
figures re-encoded small, execution timestamps dropped, and a digest of the
cells' sources kept in the notebook's metadata, so that the test can tell
outputs that no longer belong to the code. A notebook whose outputs hold an
error, TensorFlow's log lines or an absolute path is not saved.
"""

import argparse
import base64
import hashlib
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from PIL import Image

NOTEBOOK_DIR = Path(__file__).resolve().parent
ROOT = NOTEBOOK_DIR.parent

#: The teaching notebooks, in reading order (docs/contributing.md's Notebooks section describes each).
NOTEBOOKS = [
    "Art_Generation_with_Neural_Style_Transfer.ipynb",
    "Second_edition_with_nst_tf.ipynb",
    "Your_own_images.ipynb",
    "CS231n_style_transfer.ipynb",
    "Styles_by_region.ipynb",
    "Fast_style_models.ipynb",
]

#: A figure wider than this (pixels) is scaled down to it.
MAX_FIGURE_WIDTH = 900
JPEG_QUALITY = 75

#: What TensorFlow (C++ logging, absl, Python logging) and CUDA probing print; none of it belongs in a notebook.
NOISE = re.compile(
    r"WARNING|^[IWEF]\d{4} |absl|retracing|oneDNN|(?i:cuda)|tensorflow:|TF_ENABLE_ONEDNN_OPTS", re.MULTILINE
)


def sources_digest(notebook):
    """SHA-256 of the cells' types and sources: what the saved outputs were computed from."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        digest.update(f"{cell.cell_type}\0{cell.source}\0".encode())
    return digest.hexdigest()


def output_text(notebook):
    """Everything the code cells printed or returned as text, in order."""
    parts = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type == "error":
                parts.append("\n".join(output.traceback))
            elif "text/plain" in output.get("data", {}):
                parts.append(output.data["text/plain"].rstrip("\n") + "\n")
    return "".join(parts)


def _private_paths():
    """Absolute paths that say where and by whom a notebook was run."""
    paths = {str(ROOT), tempfile.gettempdir(), os.path.expanduser("~"), os.path.realpath(tempfile.gettempdir())}
    return sorted(path for path in paths if len(path) > 1)


def problems(notebook):
    """What makes a notebook's outputs unfit to commit, one line each (empty when there is nothing)."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if output.output_type == "error":
                found.append(f"cell {index}: {output.ename}: {output.evalue}")
    text = output_text(notebook)
    lines = {}  # each noisy line once, in order
    for match in NOISE.finditer(text):
        lines[text[text.rfind("\n", 0, match.start()) + 1 : text.find("\n", match.start())]] = None
    found += [f"TensorFlow's log line: {line[:120]}" for line in lines]
    for path in _private_paths():
        if path in text:
            found.append(f"an absolute path: {path}")
    if re.search(r"(^|[\s'\"(])/(tmp|home|Users|root|var/folders)/", text):
        found.append("an absolute path under /tmp, /home, /Users, /root or /var/folders")
    return found


def _small_image(png):
    """The smaller of a PNG figure scaled to MAX_FIGURE_WIDTH re-saved as PNG and as JPEG: (mime type, bytes)."""
    image = Image.open(io.BytesIO(png))
    image.load()
    if image.width > MAX_FIGURE_WIDTH:
        height = round(image.height * MAX_FIGURE_WIDTH / image.width)
        image = image.resize((MAX_FIGURE_WIDTH, height), Image.Resampling.LANCZOS)
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    encoded = {}
    for mime, kind, options in (
        ("image/png", "PNG", {"optimize": True}),
        ("image/jpeg", "JPEG", {"quality": JPEG_QUALITY, "optimize": True}),
    ):
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, kind, **options)
        encoded[mime] = buffer.getvalue()
    mime = min(encoded, key=lambda key: len(encoded[key]))
    return mime, encoded[mime]


def tidy(notebook):
    """Makes an executed notebook fit to commit, in place: small figures, no timestamps, the sources' digest."""
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            data = output.get("data", {})
            if "image/png" in data:
                mime, image = _small_image(base64.b64decode(data.pop("image/png")))
                data[mime] = base64.b64encode(image).decode("ascii")
                output.metadata = {}
    notebook.metadata["nst_tf"] = {
        "sources_sha256": sources_digest(notebook),
        "made_by": "python notebooks/execute.py",
    }
    return notebook


def execute(name, timeout=600):
    """Runs ``notebooks/<name>`` from a clean start in a fresh kernel; returns the executed notebook (not tidied).

    Raises nbclient's ``CellExecutionError``, naming the cell, when a cell fails.
    """
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    # The kernel imports nst_tf from this checkout, whatever copy the environment has installed.
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved]))
    try:
        client = NotebookClient(
            notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
        )
        client.execute()
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    return notebook


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Re-execute the notebooks in notebooks/ and save them with small outputs."
    )
    parser.add_argument("names", nargs="*", metavar="NOTEBOOK", help=f"default: all of {', '.join(NOTEBOOKS)}")
    args = parser.parse_args(argv)
    names = [Path(name).name for name in args.names] or NOTEBOOKS
    for name in names:
        if name not in NOTEBOOKS:
            parser.error(f"{name} is not one of the notebooks: {', '.join(NOTEBOOKS)}")
    failed = False
    for name in names:
        start = time.perf_counter()
        notebook = tidy(execute(name))
        found = problems(notebook)
        if found:
            failed = True
            print(f"{name}: not saved:", *found, sep="\n  ", file=sys.stderr)
            continue
        nbformat.validate(notebook)
        path = NOTEBOOK_DIR / name
        nbformat.write(notebook, path)
        print(f"{name}: saved, {path.stat().st_size / 1000:.0f} kB, ran {time.perf_counter() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
