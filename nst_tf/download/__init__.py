"""``python -m nst_tf.download``: fetch the network weights (VGG-19's, SqueezeNet's) and verify them.

``--weights mat`` (default): MatConvNet's imagenet-vgg-verydeep-19.mat, the course's first edition; ``keras``:
Keras' vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, copied from Keras' cache when a good copy is there;
``squeezenet``: torchvision's squeezenet1_1-b8a52dc0.pth, CS231n's network. Saved into pretrained-model/ where the
current folder has one, else into ``$NST_TF_HOME`` (``nst_tf.plan.locations``), or ``--dir``; ``fetch_weights`` is
the same for ``python -m nst_tf --download``.

Each address is tried in order; dropped connections are retried with growing delays and resumed by range
requests into ``.NAME.nst_tf-partial`` beside the destination (see ``partial``), which a signal keeps. No more
bytes are written than the recorded size or, while unknown, the server's Content-Length and a ceiling. The file
becomes the destination only once its hash (MD5, or SHA-256 for SqueezeNet) is a known one, and never replaces
an existing file. Every failure is one line. The names below live in ``command``, loaded on first use, so that
the command handles signals from its first moment (``__main__``).
"""

__all__ = (
    "CHUNK KERAS_CEILING KERAS_KNOWN_MD5 KERAS_MIRROR KERAS_SOURCES KERAS_URL KNOWN_MD5 KNOWN_SIZES MAT_CEILING "
    "MAT_SOURCES SQUEEZENET_CEILING SQUEEZENET_HASH_PREFIX SQUEEZENET_KNOWN_SHA256 SQUEEZENET_MODEL "
    "SQUEEZENET_SOURCES SQUEEZENET_URL URL DownloadError Policy download fetch_keras_weights "
    "fetch_squeezenet_weights fetch_weights keras_cache_dir main partial_paths"
).split()


def __getattr__(name):
    if name in __all__:
        from . import command

        return getattr(command, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
