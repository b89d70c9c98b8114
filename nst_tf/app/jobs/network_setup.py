"""The network a command line runs and its weights file, settled before a job is prepared: the layers checked
against the network (``refuse_layers_of_another_network``), the weights found from any folder
(``locate_weights``), and fetched first with ``--download`` (``prepare_with_weights``)."""

import os

from ...ground.errors import NSTError, WeightsFileError, quoted
from ...plan.locations import DOWNLOADS, download_command, download_folder, find_weights
from ...plan.networks.network_registry import NETWORKS
from ...runs.presets import PRESETS


def refuse_layers_of_another_network(args, preset):
    """``NSTError`` naming the presets made for ``--network`` when it is not ``preset``'s and the layers (the
    preset's, unless given) are not that network's: ``--network squeezenet`` keeps VGG-19's conv4_2 otherwise."""
    network = NETWORKS.get(args.network)
    if network is None or network.name == preset.config.network:
        return
    try:
        network.check_layer("content_layer", args.content_layer)
        for name, _ in args.style_layers:
            network.check_layer("style layer", name)
    except NSTError as error:
        names = [name for name, other in PRESETS.items() if other.config.network == network.name]
        raise NSTError(
            f"--network {network.name} with the {preset.name} preset's layers: {error}; start from "
            f"--preset {' or '.join(names)} (its layers and weights), or give --content_layer and --style_layers"
        ) from None


def locate_weights(args, given, preset):
    """Sets ``args.model`` to the weights file the run reads (``plan.locations.find_weights``): as written when
    ``--model`` is in ``given``, else the preset's path, or its name in NST_TF_HOME's folder where that exists.
    ``NSTError`` for a ``--model`` the user named that is missing and no file nst_tf downloads (``preset``: the
    run's, whose weights the line says how to fetch)."""
    args.model = find_weights(args.model, "model" in given)
    named = os.path.basename(args.model) in DOWNLOADS  # a file nst_tf downloads: the reader's line names how
    if "model" in given and not named and not args.download and not os.path.lexists(args.model):
        choice = DOWNLOADS.get(os.path.basename(preset.model))
        fetch = f", or fetch the preset's weights with: {download_command(choice[0])}" if choice else ""
        raise NSTError(
            f"--model: {quoted(args.model)}: file not found; check the path{fetch} (without --model they are "
            "looked for in pretrained-model/, then in NST_TF_HOME)"
        )


def prepare_with_weights(kind, request, fetch_weights=None):
    """``kind.prepare(request)``; with ``--download`` and the weights file missing (the last check of a
    prepare, after every other), ``fetch_weights(choice, destination)`` fetches it first, then it prepares again.

    ``choice``: ``python -m nst_tf.download``'s ``--weights`` for the file's name; ``destination``: ``--model``
    where given, else the downloader's folder (``plan.locations.download_folder``). ``NSTError`` for a name
    nst_tf does not download, or no ``fetch_weights`` (the command's entry point passes one)."""
    args = request.args
    try:
        return kind.prepare(request)
    except WeightsFileError:
        if not args.download or os.path.lexists(args.model):
            raise
    name = os.path.basename(args.model)
    if name not in DOWNLOADS:
        raise NSTError(f"--download: {quoted(args.model)} is none of the files it fetches ({', '.join(DOWNLOADS)})")
    if fetch_weights is None:
        raise NSTError(
            f"--download works in python -m nst_tf; fetch the file with: {download_command(DOWNLOADS[name][0])}"
        )
    given = "model" in request.given
    args.model = fetch_weights(DOWNLOADS[name][0], args.model if given else os.path.join(download_folder(), name))
    return kind.prepare(request)
