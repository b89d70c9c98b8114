"""A fast style model on disk: ``save_fast_model`` writes its description and weights, ``load_fast_model`` reads
them back into a ``FastModel`` (the network rebuilt from its description, then the weights checked and loaded).

Stylizing reads only ``fast_model.json`` (parsed, every field checked) and ``weights.weights.h5`` (HDF5 arrays,
each dataset's shape and type checked against the network before anything is read), never the SavedModel: a
SavedModel is a graph of TensorFlow operations, some of which read and write files, so a folder from elsewhere
must not run one. Memory stays bounded by the network the description allows (``TransformSpec``'s limits).
"""

import contextlib
import json
import os
import warnings

import numpy as np

from ..ground.errors import NSTError, quoted
from ..plan.fast_model import FastModelFolder
from ..tensors.images import new_file


class FastModel:
    """A trained transformation network: ``net`` (Keras), ``description`` (``FastModelDescription``),
    ``folder`` (its ``FastModelFolder``, or None for one not yet saved)."""

    def __init__(self, net, description, folder=None):
        self.net, self.description, self.folder = net, description, folder

    @property
    def spec(self):
        return self.description.spec

    def style_weights(self, weights=None):
        """Checked style weights: ``weights`` (one number per style, at least 0, not all 0; or a style's name)
        as a tuple summing to 1, or the first style's when None."""
        names = self.description.style_names
        if weights is None:
            return None
        if isinstance(weights, str):
            if weights not in names:
                raise NSTError(f"style {weights!r:.80} is not one of this model's: {', '.join(names)}")
            return tuple(float(name == weights) for name in names)
        values = [float(w) for w in weights]
        if len(values) != len(names) or any(not np.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
            raise NSTError(
                f"style weights: expected {len(names)} numbers of at least 0, not all 0 (one per style: "
                f"{', '.join(names)}); got {', '.join(map(str, weights))}"
            )
        return tuple(w / sum(values) for w in values)

    def __call__(self, images, weights=None):
        """The stylized batch of ``images`` (B, H, W, 3) float32 in [0, 255]: a tensor of the same shape."""
        from ..tensors.transform_net import stylize_pixels

        return stylize_pixels(self.net, self.spec, images, self.style_weights(weights))


def new_fast_model(description):
    """A ``FastModel`` of ``description`` with freshly initialized weights."""
    from ..tensors.transform_net import build_transform_net

    return FastModel(build_transform_net(description.spec), description)


def save_fast_model(path, model):
    """Writes ``model``'s description and weights into folder ``path`` (created if missing), each file written
    under a temporary name and renamed, so a reader sees the old file or the new one, never half of one."""
    folder = FastModelFolder(path)
    os.makedirs(folder.path, exist_ok=True)
    weights = _temporary(folder.path, ".weights.h5")
    try:
        with _keras_numpy_quiet():
            model.net.save_weights(weights)
        os.replace(weights, folder.weights)
    finally:
        if os.path.exists(weights):
            os.remove(weights)
    text = _temporary(folder.path, ".json")
    try:
        with open(text, "w", encoding="utf-8") as file:
            json.dump(model.description.to_json(), file, indent=2)
        os.replace(text, folder.description)
    finally:
        if os.path.exists(text):
            os.remove(text)
    model.folder = folder


@contextlib.contextmanager
def _keras_numpy_quiet():
    """Keras 3 turns TensorFlow variables into arrays with ``np.array(variable)``, which NumPy 2 answers with a
    DeprecationWarning (TensorFlow's ``__array__`` takes no ``copy``): harmless here, and a user running with
    warnings as errors must still be able to save and load."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy", DeprecationWarning)
        yield


def _temporary(folder, extension):
    """The path of a new empty file in ``folder`` ending in ``extension`` (Keras picks its format by the name)."""
    fd, path = new_file(folder, extension)
    os.close(fd)
    return path


def load_fast_model(path):
    """The ``FastModel`` saved in folder ``path``; ``NSTError`` in one line for a folder that is not one, a
    description that does not parse, a weights file that is missing, not HDF5, or whose arrays do not match the
    network it describes."""
    folder = FastModelFolder(path)
    description = folder.read_description()
    model = new_fast_model(description)
    _check_weights_file(folder, model.net)
    try:
        with _keras_numpy_quiet():
            model.net.load_weights(folder.weights)
    except (ValueError, OSError, KeyError, TypeError) as error:
        raise NSTError(f"--fast_model {quoted(folder.path)}: its weights do not load: {error}") from None
    model.folder = folder
    return model


def _check_weights_file(folder, net):
    """Raises ``NSTError`` unless the weights file is a regular HDF5 file whose datasets, by shape and type alone
    (nothing read yet), are float arrays of exactly the shapes of ``net``'s weights: a file of another network
    would otherwise load in part (Keras passes over parts it does not find) or hold more than the network needs."""
    import h5py

    where = f"--fast_model {quoted(folder.path)}"
    if not os.path.isfile(folder.weights):
        raise NSTError(f"{where}: no {os.path.basename(folder.weights)} in it; the training saves it at the end")
    shapes = []
    try:
        with h5py.File(folder.weights, "r") as file:
            datasets = []
            file.visititems(lambda name, item: datasets.append(item) if isinstance(item, h5py.Dataset) else None)
            for dataset in datasets:
                if dataset.dtype.kind != "f":
                    raise NSTError(f"{where}: its weights file holds a {dataset.dtype} array; weights are floats")
                shapes.append(tuple(int(side) for side in dataset.shape))
    except (OSError, ValueError) as error:
        raise NSTError(f"{where}: its weights file is not HDF5 ({error}); train the model again") from None
    expected = sorted(tuple(int(side) for side in variable.shape) for variable in net.weights)
    found = sum(int(np.prod(shape, dtype=np.float64)) for shape in shapes)
    allowed = sum(int(np.prod(shape)) for shape in expected)
    if found > allowed:
        raise NSTError(
            f"{where}: its weights file holds {found} numbers where the network of fast_model.json has {allowed}"
        )
    if sorted(shapes) != expected:
        raise NSTError(
            f"{where}: its weights are of another network than fast_model.json describes; keep the two files "
            "of one training together"
        )
