"""Dataclass fields that carry their command-line help: the frozen option dataclasses' one helper."""

from dataclasses import field


def option(default, help, **argparse):
    """A field whose ``metadata`` holds its command-line ``help`` and any other ``argparse`` settings.

    The command's parser reads each field's default and metadata (``cli.build_parser``), so
    defaults and help are written once, on the dataclass.
    """
    return field(default=default, metadata={"help": help, **argparse})
