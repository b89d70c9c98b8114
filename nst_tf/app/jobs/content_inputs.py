"""Which content images a command names: files, globs and folders, in a stable order, and their output names."""

import glob
import os

from ...ground.errors import NSTError, quoted
from ...ground.files import is_image_file


def is_pattern(name, resolve=None):
    """Whether content name ``name`` is a glob: it has ``*``, ``?`` or ``[`` and names no existing file.

    ``resolve(name)``: where a plain name is looked up too (e.g. under images/).
    """
    exists = os.path.lexists(name) or (resolve is not None and os.path.lexists(resolve(name)))
    return not exists and any(c in name for c in "*?[")


def content_paths(names, recursive=False, resolve=None, left_out=None):
    """The paths of the content images ``names`` (the command line's values) give, in order, each once: a plain
    name as ``resolve(name)`` gives it (default: as it is); a folder its files that are images by content, sorted
    (its subfolders' too with ``recursive``); a glob (``is_pattern``) the images it matches, sorted. ``NSTError``
    for a glob or folder holding no image. ``left_out``: a list that receives the folders' files that are not
    images (hidden ones aside), in name order.
    """
    found = []
    for name in names:
        if os.path.isdir(name):
            images = _folder_images(name, recursive, left_out)
            if not images:
                raise NSTError(f"--content_image_filename: {quoted(name)} holds no image")
            found.extend(images)
        elif is_pattern(name):
            images = [p for p in sorted(_glob(name, recursive)) if is_image_file(p)]
            if not images:
                raise NSTError(f"--content_image_filename: no image matches {quoted(name)}")
            found.extend(images)
        else:
            found.append(resolve(name) if resolve else name)
    return list(dict.fromkeys(found))


def _glob(pattern, recursive):
    """The files ``glob.glob(pattern, recursive=recursive)`` gives (folders for a pattern ending in a
    separator), but ``**`` never enters a symbolic link to a folder.

    glob follows them, and a link to a parent folder made it list forever. As with glob, ``**`` matches
    any number of folders (none too) that are not hidden; without ``recursive`` it is ``*``.
    """
    parts = pattern.split(os.sep)
    if not recursive or "**" not in parts:
        return glob.glob(pattern)
    at = parts.index("**")
    head, rest = os.sep.join(parts[:at]), os.sep.join(parts[at + 1 :])
    if not head and pattern.startswith(os.sep):
        head = os.sep
    found = []
    for base in glob.glob(head) if head else ["."]:
        for root, folders, files in os.walk(base):  # never into links (followlinks=False)
            folders[:] = sorted(name for name in folders if not name.startswith("."))
            if not head:  # relative to here, as glob gives them: "a.png", "sub/b.png"
                root = "" if root == "." else os.path.relpath(root)
            if rest == os.sep or (not rest and pattern.endswith(os.sep)):  # "**/": folders only, as glob gives
                found.extend([os.path.join(root, "")] if root else [])
            elif rest:
                found.extend(_glob(os.path.join(glob.escape(root), rest), recursive))
            else:
                found.extend(os.path.join(root, name) for name in files if not name.startswith("."))
    return list(dict.fromkeys(found))


def _folder_images(folder, recursive, left_out=None):
    """The image files of ``folder`` (and its subfolders' with ``recursive``) in name order; the other files, but
    hidden ones, are appended to ``left_out`` when it is a list."""
    images = []
    for root, folders, files in os.walk(folder):
        folders.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if is_image_file(path):
                images.append(path)
            elif left_out is not None and not name.startswith("."):
                left_out.append(path)
        if not recursive:
            break
    return images


def output_names(paths, style_paths=None, extension=".jpg"):
    """(names, notes): the result's file name of each content image (with ``style_paths``, of each content and
    style, content major): ``<content stem>.jpg`` or ``<content stem>__<style stem>.jpg``, a name taken by an
    earlier image getting ``-2``, ``-3``, ... before its extension; a note for each renamed image.
    """
    stems = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    if style_paths:
        styles = [os.path.splitext(os.path.basename(path))[0] for path in style_paths]
        stems = [f"{stem}__{style}" for stem in stems for style in styles]
        paths = [path for path in paths for _ in styles]
    taken, names, notes = set(), [], []
    for path, stem in zip(paths, stems):
        name, count = stem + extension, 1
        while name.lower() in taken:
            count += 1
            name = f"{stem}-{count}{extension}"
        if count > 1:
            notes.append(f"{quoted(path)} is saved as {name}: an earlier image has the name {stem}{extension}")
        taken.add(name.lower())
        names.append(name)
    return names, notes
