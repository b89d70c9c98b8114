"""Where the weights are looked for and saved, free of TensorFlow: ``weights_home``, ``find_weights``,
``download_folder``, and what to run for a missing file (``download_command``, ``missing_weights_hint``).

A run's weights are looked for at the path its preset names (``pretrained-model/<file>``, relative to the
current folder, the course's layout), then in ``weights_home()`` (``$NST_TF_HOME``, else
``${XDG_CACHE_HOME:-~/.cache}/nst_tf``, as Keras and torch keep theirs), so that the command runs from any
folder. ``python -m nst_tf.download`` saves into ``download_folder()``: ``pretrained-model/`` where the current
folder has one, else ``weights_home()``.
"""

import os

from .config import CONFIG, KERAS_VGG_MODEL

#: The course's folder of weights, relative to the current folder.
PRETRAINED_DIR = os.path.dirname(CONFIG.VGG_MODEL)

#: The file names ``python -m nst_tf.download`` fetches -> its ``--weights`` choice and what the file is.
DOWNLOADS = {
    os.path.basename(CONFIG.VGG_MODEL): ("mat", "about 510 MB, MatConvNet's pretrained models"),
    os.path.basename(KERAS_VGG_MODEL): ("keras", "about 80 MB, Keras' VGG19 ImageNet weights"),
    "squeezenet1_1-b8a52dc0.pth": ("squeezenet", "about 5 MB, torchvision's SqueezeNet 1.1 ImageNet weights"),
}


#: The project's own default images (``images/content.jpg``, ``images/style.jpg``), shipped inside the package.
BUNDLED_IMAGES_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "images"))

#: The folder image names are looked for in, relative to the current folder (the course's layout).
IMAGES_DIR = "images"


def find_image(name):
    """``name`` where it exists; else, for a name under ``images/`` or a bare name, the package's bundled copy
    when it has one (the default images from any folder); else ``name`` unchanged (its reader then says so)."""
    if os.path.lexists(name):
        return name
    if os.path.dirname(os.path.normpath(name)) in ("", IMAGES_DIR):
        bundled = os.path.join(BUNDLED_IMAGES_DIR, os.path.basename(name))
        if os.path.lexists(bundled):
            return bundled
    return name


def weights_home():
    """``$NST_TF_HOME`` if set, else ``${XDG_CACHE_HOME:-~/.cache}/nst_tf``, user folder expanded."""
    home = os.environ.get("NST_TF_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        home = os.path.join(cache, "nst_tf")
    return os.path.expanduser(home)


def find_weights(path, given=False):
    """The weights file a run reads: ``path`` itself when ``given`` (the user named it) or when it exists, else
    ``weights_home()/<its name>`` when that exists, else ``path`` unchanged (its reader then says it is missing)."""
    if given or os.path.lexists(path):
        return path
    home = os.path.join(weights_home(), os.path.basename(os.fspath(path)))
    return home if os.path.lexists(home) else path


def download_folder():
    """Where downloads go: ``pretrained-model/`` where the current folder has one, else ``weights_home()``."""
    return PRETRAINED_DIR if os.path.isdir(PRETRAINED_DIR) else weights_home()


def download_command(choice):
    """The command fetching the weights of ``--weights`` ``choice`` ("mat", "keras" or "squeezenet")."""
    return "python -m nst_tf.download" + ("" if choice == "mat" else f" --weights {choice}")


def missing_weights_hint(choice):
    """What "file not found" adds for the weights of ``choice``: what to download, the command, where nst_tf
    looks (the folder ``weights_home()`` names now)."""
    name = next(name for name, (kind, _) in DOWNLOADS.items() if kind == choice)
    return (
        f"download {name} ({DOWNLOADS[name][1]}) with: {download_command(choice)} (see pretrained-model/README.md; "
        f"python -m nst_tf --download fetches it too); nst_tf looks for it in {PRETRAINED_DIR}/, then in "
        f"{weights_home()} (NST_TF_HOME)"
    )
