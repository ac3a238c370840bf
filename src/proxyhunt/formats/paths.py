"""Find the files that command-line paths name: files, directories and glob patterns."""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from typing import NamedTuple

log = logging.getLogger(__name__)

# Characters that make an argument a glob pattern, as the glob module reads them.
_GLOB_CHARACTERS = re.compile(r"[*?[]")


class Problem(NamedTuple):
    """A path that yields no file, with a message that gives the cause and the fix."""

    path: str
    message: str


def find_files(paths: Iterable[str]) -> tuple[list[str], list[Problem]]:
    """Expand files, directories and glob patterns into a list of files.

    Directories, including those a glob pattern matches, are read recursively
    in sorted order, leaving out hidden files and the contents of hidden
    directories (names starting with a dot). Walks follow symbolic links to
    directories but enter each directory once, so a link loop is not followed.
    Files keep the order of the arguments. A file reached twice, under the
    same name or another one such as a link, is listed once, under the name
    first reached. Returns the files and a problem for each argument that
    yields no file and for each directory or file that could not be listed or
    found. ``-`` (standard input) is passed through.
    """
    candidates: list[str] = []
    problems: list[Problem] = []
    for argument in paths:
        problem_count = len(problems)
        if argument == "-":
            candidates.append("-")
            continue
        try:
            info = os.stat(argument)
        except OSError as error:
            if not _GLOB_CHARACTERS.search(argument):
                problems.append(Problem(argument, _stat_error_message(argument, error)))
                continue
            matches = _glob_files(argument, problems)
            if not matches and len(problems) == problem_count:
                problems.append(Problem(argument, "no file matches this glob pattern; check the pattern"))
            candidates.extend(matches)
            continue
        if not stat.S_ISDIR(info.st_mode):
            candidates.append(argument)
            continue
        found = _files_under(argument, problems)
        if not found and len(problems) == problem_count:
            problems.append(Problem(argument, "the directory contains no files"))
        candidates.extend(found)
    return unique_paths(candidates), problems


def _files_under(directory: str, problems: list[Problem]) -> list[str]:
    """Return the visible regular files below a directory, in sorted order."""
    found = [path for _, _, files in walk(directory, problems) for path in files]
    return sorted(found)


def walk(root: str, problems: list[Problem]) -> Iterator[tuple[str, list[str], list[str]]]:
    """Yield each visible directory below ``root``, ``root`` first, with its subdirectories and regular files.

    As with os.walk, the caller may remove subdirectories from the list to
    leave them out of the rest of the walk.

    Symbolic links to directories are followed, but each directory is entered
    once, identified by device and inode. ``root`` may be "" for the current
    directory, and paths are then relative to it. A directory or entry that
    cannot be read is added to ``problems``. Entries that are not regular
    files or directories (FIFOs, sockets, devices, broken links) are left
    out, because reading a FIFO found in a directory could block forever.
    """
    visited: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            info = os.stat(directory or os.curdir)
        except OSError as error:
            problems.append(Problem(directory or os.curdir, _stat_error_message(directory, error)))
            continue
        identity = (info.st_dev, info.st_ino)
        if identity in visited:
            log.debug("%s: directory already read under another name, not read again", directory)
            continue
        visited.add(identity)
        try:
            with os.scandir(directory or os.curdir) as entries:
                names = sorted(entry.name for entry in entries if not entry.name.startswith("."))
        except OSError as error:
            problems.append(Problem(directory or os.curdir, _directory_error_message(error)))
            continue

        files = []
        subdirectories = []
        for name in names:
            path = os.path.join(directory, name)
            try:
                mode = os.stat(path).st_mode
            except FileNotFoundError:
                log.debug("%s: broken symbolic link, left out", path)
                continue
            except OSError as error:
                problems.append(Problem(path, _stat_error_message(path, error)))
                continue
            if stat.S_ISDIR(mode):
                subdirectories.append(path)
            elif stat.S_ISREG(mode):
                files.append(path)
            else:
                log.debug("%s: not a regular file, left out", path)
        yield directory, subdirectories, files
        stack.extend(reversed(subdirectories))


def _glob_files(pattern: str, problems: list[Problem]) -> list[str]:
    """Return the files that a glob pattern matches, with the files below each directory it matches."""
    files = []
    for match in sorted(_glob(pattern, problems)):
        try:
            info = os.stat(match or os.curdir)
        except OSError as error:
            problems.append(Problem(match, _stat_error_message(match, error)))
            continue
        if stat.S_ISDIR(info.st_mode):
            files.extend(_files_under(match, problems))
        else:
            files.append(match)
    return files


def _glob(pattern: str, problems: list[Problem]) -> list[str]:
    """Return the paths that match a glob pattern, as ``glob.glob(pattern, recursive=True)`` does.

    ``*``, ``?`` and ``[...]`` match within one path component and never match
    a leading dot. ``**`` as a whole component matches any number of visible
    directories. Unlike ``glob.glob``, it enters each directory once, so a link
    loop is not followed, and a directory that cannot be listed is added to
    ``problems`` instead of being skipped in silence.
    """
    absolute = os.path.isabs(pattern)
    components = [component for component in pattern.split(os.sep) if component]
    directories_only = pattern.endswith(os.sep)
    paths = [os.sep if absolute else ""]
    for index, component in enumerate(components):
        last = index == len(components) - 1
        need_directory = directories_only or not last
        matches: list[str] = []
        for base in paths:
            if component == "**":
                matches.extend(directory for directory, _, _ in walk(base, problems))
            elif _GLOB_CHARACTERS.search(component):
                matches.extend(_match_names(base, component, need_directory, problems))
            elif _path_exists(os.path.join(base, component), need_directory, problems):
                matches.append(os.path.join(base, component))
        paths = matches
    return paths


def _match_names(directory: str, component: str, need_directory: bool, problems: list[Problem]) -> list[str]:
    """Return the entries of a directory whose names match one glob component."""
    try:
        names = sorted(os.listdir(directory or os.curdir))
    except NotADirectoryError:
        return []
    except OSError as error:
        problems.append(Problem(directory or os.curdir, _directory_error_message(error)))
        return []
    hidden_allowed = component.startswith(".")
    return [
        os.path.join(directory, name)
        for name in names
        if (hidden_allowed or not name.startswith("."))
        and fnmatch.fnmatchcase(name, component)
        and _path_exists(os.path.join(directory, name), need_directory, problems)
    ]


def _path_exists(path: str, need_directory: bool, problems: list[Problem]) -> bool:
    """Return whether ``path`` exists, and is a directory if ``need_directory``; report a permission error."""
    try:
        mode = os.stat(path).st_mode if need_directory else os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as error:
        problems.append(Problem(path, _stat_error_message(path, error)))
        return False
    return stat.S_ISDIR(mode) or not need_directory


def unique_paths(paths: list[str]) -> list[str]:
    """Return ``paths`` without later names of a file or directory already listed, judged by device and inode."""
    seen: set[object] = set()
    unique = []
    for path in paths:
        try:
            info = os.fstat(sys.stdin.fileno()) if path == "-" else os.stat(path)
            identity: object = (info.st_dev, info.st_ino)
        except (OSError, ValueError, AttributeError):
            # A path that cannot be examined is kept, so that the loader reports its
            # error. Standard input without a file descriptor is identified by its name.
            identity = path
        if identity not in seen:
            seen.add(identity)
            unique.append(path)
    return unique


def _stat_error_message(path: str, error: OSError) -> str:
    """Return the report message for a path that os.stat rejected."""
    if isinstance(error, FileNotFoundError):
        if os.path.islink(path):
            return "broken symbolic link: its target does not exist; check the link"
        return "file not found; check the path"
    if isinstance(error, PermissionError):
        blocked = _unsearchable_directory(path)
        return f"permission denied: the directory {blocked} cannot be searched; check its permissions"
    return f"cannot be read ({error.strerror}); check the path"


def _directory_error_message(error: OSError) -> str:
    """Return the report message for a directory that could not be listed."""
    if isinstance(error, PermissionError):
        return "permission denied: the directory cannot be listed; check its read and execute permissions"
    return f"the directory cannot be listed ({error.strerror})"


def _unsearchable_directory(path: str) -> str:
    """Return the directory above ``path`` whose missing search permission hides it.

    os.stat fails with EACCES when a directory on the way lacks execute
    permission, so the first ancestor that cannot be examined is below it.
    """
    ancestors = []
    parent = os.path.dirname(os.path.normpath(path))
    while parent and parent not in ancestors:
        ancestors.append(parent)
        parent = os.path.dirname(parent)
    blocked = os.curdir
    for ancestor in reversed(ancestors):
        try:
            os.stat(ancestor)
        except PermissionError:
            return blocked
        except OSError:
            break
        blocked = ancestor
    return blocked
