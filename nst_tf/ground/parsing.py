"""The commands' argument parser: a wrong option is one ``NSTError`` line with a suggestion, and every option may
be written with dashes or underscores (``--output-dir`` and ``--output_dir``; ``--max_size`` and ``--max-size``).
"""

import argparse
import difflib
import re

from .errors import NSTError

#: A word argparse would take for an option but is a value: a negative number or size (-1G, -inf, -nan, -1e5).
_NEGATIVE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)

#: argparse's name of an option with several names, "argument -n/--iterations/--epochs:".
_NAMES = re.compile(r"^argument (?:-[^\s/]+/)+(--[^\s/:]+):")


class CommandParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose errors are ``NSTError`` (the command writes one line and exits 2),
    which suggests the closest option for an unknown one, takes ``-``/``_`` alike in option names, and takes a
    word written like a negative number as a value (so that the option's own check refuses it)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # an option is written whole: the commands tell which were given
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE

    def _parse_optional(self, arg_string):
        # A negative value is a value even where it begins like a short option: "-nan" is not "-n an".
        if _NEGATIVE.match(arg_string) and arg_string not in self._option_string_actions:
            return None
        return super()._parse_optional(arg_string)

    def parse_known_args(self, args=None, namespace=None):
        """argparse's, on ``args`` with each option respelled as the parser spells it (``respelled``)."""
        return super().parse_known_args(None if args is None else self.respelled(args), namespace)

    def respelled(self, argv):
        """``argv`` with each ``--a-b`` (or ``--a_b``, ``=value`` kept) the parser knows only under the other
        spelling written that way; words after ``--`` and unknown options are left as they are."""
        known = self._option_string_actions
        words = list(argv)
        for index, word in enumerate(words):
            if word == "--":
                break
            if not word.startswith("--"):
                continue
            name, equals, value = word.partition("=")
            if name in known:
                continue
            for other in (name[:2] + name[2:].replace("-", "_"), name[:2] + name[2:].replace("_", "-")):
                if other in known:
                    words[index] = other + equals + value
                    break
        return words

    def error(self, message):
        """Raises ``message`` as an ``NSTError``, with "did you mean" for an unknown option."""
        raise NSTError(self._suggesting(message))

    def _suggesting(self, message):
        """``message``, ending in the closest known option when it names an unrecognized one; an option with
        other names is named by its last (its own: ``-n/--iterations/--epochs`` is ``--epochs``)."""
        message = _NAMES.sub(r"argument \1:", message)
        prefix = "unrecognized arguments: "
        if not message.startswith(prefix):
            return message
        unknown = [word for word in message[len(prefix) :].split() if word.startswith("-")]
        options = [option for option in self._option_string_actions if option.startswith("--")]
        for word in unknown:
            name = word.partition("=")[0].replace("-", "_")
            close = difflib.get_close_matches(name, [o.replace("-", "_") for o in options], n=1, cutoff=0.6)
            if close:
                spelled = options[[o.replace("-", "_") for o in options].index(close[0])]
                return f"{message} (did you mean {spelled}?)"
        return message
