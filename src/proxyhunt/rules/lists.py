"""Lists files: the site's values for Sigma ``|expand`` placeholders and correlation thresholds.

A lists file is YAML that maps a placeholder name to a list of strings, or to
one number or Sigma timespan for a correlation rule's threshold::

    known_backup_destinations:
      - backup.example.com
      - "*.backup.example.net"
    rclone_cloud_upload_bytes: 2147483648
    rclone_cloud_upload_window: 4h

The package ships default values in ``rules/defaults/lists.yml``. A user's
lists file replaces them key by key: a name the user gives replaces the whole
default value of that name, and the other defaults stay in force.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from proxyhunt.tuning.triage import KNOWN_BACKUP_SOURCES, SERVER_SOURCES, SourceList

_NULL_TAG = "tag:yaml.org,2002:null"

# A scalar that is meant as a correlation threshold: a number with letters and at
# most one dot, such as 1073741824, 1h or a malformed -5, 1e9, 0x100 or 1h30m. It
# is read here and checked by the correlation that uses it, so that every bad
# threshold gets one message naming the key, the rule and what a threshold may be.
# An address such as 10.0.0.1 or 10.0.0.0/8 is no threshold: it must be a list.
_THRESHOLD_SHAPE = re.compile(r"\s*[+-]?[0-9]*\.?[0-9][0-9A-Za-z]*\s*")


class PlaceholderListsError(ValueError):
    """A lists file that cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class PlaceholderLists:
    """The values of each placeholder, from the default lists and one user lists file.

    ``path`` is the user's lists file, or "" when none was given; messages
    about a missing value tell the user to add it there. ``sources`` names the
    file each value came from when it is not ``path``, such as the defaults.
    """

    path: str
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The 1-based line where each placeholder's value starts, in the file that gave it.
    lines: dict[str, int] = field(default_factory=dict)
    # Single values for correlation thresholds and timespans, as written (source text).
    scalars: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> tuple[str, ...]:
        """Return the values of placeholder ``name``; an empty tuple when it has none."""
        return self.values.get(name, ())

    def source_of(self, name: str) -> str:
        """Return the file that gave the value of ``name``, the user's file unless it came from elsewhere."""
        return self.sources.get(name, self.path)

    def location_of(self, name: str) -> str:
        """Return ``file:line`` of the value of ``name``, or the file alone when the line is unknown."""
        line = self.lines.get(name)
        source = self.source_of(name)
        return f"{source}:{line}" if line else source

    def from_defaults(self, name: str) -> bool:
        """True when the value of ``name`` is the bundled default, not the user's."""
        return self.source_of(name) == str(default_lists_path())


def load_lists(path: str | Path) -> PlaceholderLists:
    """Read a lists file; raise ``PlaceholderListsError`` naming the file and line of the first problem."""
    location = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PlaceholderListsError(f"{location}: lists file not found; check the path given to --lists") from None
    except OSError as error:
        raise PlaceholderListsError(f"{location}: lists file cannot be read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise PlaceholderListsError(
            f"{location}: not valid UTF-8 (byte {error.start}); save the lists file as UTF-8"
        ) from None

    root = compose_yaml(location, text, PlaceholderListsError)
    if root is None:
        return PlaceholderLists(location)
    if not isinstance(root, yaml.MappingNode):
        raise PlaceholderListsError(
            f"{location}:{root.start_mark.line + 1}: a lists file must be a mapping of placeholder names to lists, "
            "such as 'known_backup_destinations: [backup.example.com]'"
        )
    return read_lists_mapping(location, root)


def compose_yaml(location: str, text: str, error_type: type[ValueError]) -> yaml.Node | None:
    """Parse YAML text into its node tree, which keeps line numbers; raise ``error_type`` naming the file and line."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{location}:{mark.line + 1}: invalid YAML at column {mark.column + 1}" if mark else f"{location}: invalid YAML"
        problem = getattr(error, "problem", None) or str(error)
        raise error_type(f"{where}: {problem}; fix the YAML syntax") from None


def read_lists_mapping(location: str, root: yaml.MappingNode) -> PlaceholderLists:
    """Read a YAML mapping node of placeholder names to values; ``location`` names its file in messages.

    Line numbers are those of the node's document, so a mapping embedded in a
    larger file (such as the ``lists`` of a rule examples file) gives that
    file's lines.
    """
    values: dict[str, tuple[str, ...]] = {}
    scalars: dict[str, str] = {}
    lines: dict[str, int] = {}
    for key, node in root.value:
        line = key.start_mark.line + 1
        if not isinstance(key, yaml.ScalarNode) or key.tag == _NULL_TAG or not key.value:
            raise PlaceholderListsError(f"{location}:{line}: a placeholder name must be a non-empty string")
        name = key.value
        if name in lines:
            raise PlaceholderListsError(
                f"{location}:{line}: placeholder '{name}' is listed twice (first at line {lines[name]}); merge the lists"
            )
        if isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG and _THRESHOLD_SHAPE.fullmatch(node.value):
            scalars[name] = node.value
        elif isinstance(node, yaml.SequenceNode):
            values[name] = tuple(_read_values(location, name, node))
            _check_source_list(location, name, node, values[name])
        else:
            raise PlaceholderListsError(
                f"{location}:{node.start_mark.line + 1}: the value of '{name}' must be a list of strings, "
                f"such as '{name}: [value1, value2]', or for a correlation threshold a whole number or a number "
                f"and one unit, such as '{name}: 1073741824' or '{name}: 1h' (compound timespans such as 1h30m "
                "are not read)"
            )
        lines[name] = line
    return PlaceholderLists(location, values, lines, scalars)


def _check_source_list(location: str, name: str, node: yaml.SequenceNode, values: tuple[str, ...]) -> None:
    """Raise ``PlaceholderListsError`` for an invalid network or Sigma string in a triage source list.

    Triage reads these lists only after the logs are loaded, so checking them
    here reports a bad value, with its line, before any log is read.
    """
    if name not in (SERVER_SOURCES, KNOWN_BACKUP_SOURCES):
        return

    for item, value in zip(node.value, values):
        try:
            SourceList.of(name, [value])
        except ValueError as error:
            raise PlaceholderListsError(f"{location}:{item.start_mark.line + 1}: {error}") from None


def _read_values(location: str, name: str, node: yaml.SequenceNode) -> Iterable[str]:
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or item.tag == _NULL_TAG:
            raise PlaceholderListsError(
                f"{location}:{item.start_mark.line + 1}: each value of '{name}' must be a string, "
                "not a list, mapping or null; quote it if it is meant as text"
            )
        # The scalar's source text: YAML would turn 'on' into a boolean and 010 into 8.
        yield item.value


def overlay_lists(base: PlaceholderLists, top: PlaceholderLists) -> PlaceholderLists:
    """Return ``base`` with every name that ``top`` gives replaced by ``top``'s value, list or single value.

    The result's ``path`` is ``top``'s, and ``sources`` remembers which file
    gave each value.
    """
    values = dict(base.values)
    scalars = dict(base.scalars)
    lines = dict(base.lines)
    sources = {name: base.source_of(name) for name in base.lines}
    for name in top.lines:
        values.pop(name, None)
        scalars.pop(name, None)
        if name in top.values:
            values[name] = top.values[name]
        else:
            scalars[name] = top.scalars[name]
        lines[name] = top.lines[name]
        sources[name] = top.source_of(name)
    # Values from the top file need no entry: their source is the result's path.
    sources = {name: source for name, source in sources.items() if source != top.path}
    return PlaceholderLists(top.path, values, lines, scalars, sources)


def default_lists_path() -> Path:
    """Return the path of the default lists that ship inside the package."""
    return Path(str(resources.files("proxyhunt.rules") / "defaults" / "lists.yml"))


@lru_cache(maxsize=1)
def load_default_lists() -> PlaceholderLists:
    """Read the default lists; an unreadable defaults file raises ``PlaceholderListsError``."""
    path = default_lists_path()
    defaults = load_lists(path)
    # Messages about a missing value must point at the user's --lists file, never the package.
    return PlaceholderLists("", defaults.values, defaults.lines, defaults.scalars, dict.fromkeys(defaults.lines, str(path)))


def lists_in_force(lists_path: str | Path | None = None) -> PlaceholderLists:
    """Return the default lists with the user's lists file, when given, laid over them key by key."""
    defaults = load_default_lists()
    if lists_path is None:
        return defaults
    return overlay_lists(defaults, load_lists(lists_path))
