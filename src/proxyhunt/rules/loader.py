"""Load Sigma rules, filters and correlation rules with pySigma from the bundled pack and user paths.

A broken file never stops the others. Each problem becomes a ``RuleProblem``
that names the file, the line where the YAML parser gives one, and the fix.
Rules and filters whose log source is not web-proxy traffic are set aside with
the reason, because their fields do not exist in the WebSession table.

Filters and correlation rules are loaded as they are written: this module does
not merge a filter into a rule's condition, and does not resolve the rules that
a correlation names. ``find_reference`` looks a reference up across every file
loaded, so a correlation or filter may name a rule from another file.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaModifierError
from sigma.filters import SigmaFilter
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaLogSource, SigmaRule

from proxyhunt.rules.checks import detection_problem
from proxyhunt.rules.lists import PlaceholderLists, load_default_lists
from proxyhunt.rules.thresholds import ThresholdError, substitute_thresholds

log = logging.getLogger(__name__)

RULE_SUFFIXES = (".yml", ".yaml")
# Examples files of a rule X.yml, read by proxyhunt rules test and never loaded as rules.
EXAMPLES_SUFFIXES = (".examples.yml", ".examples.yaml")
# The folder under bundled/ whose rule files (searched recursively) run by default.
BUNDLED_PACKS = "rclone"

# Names of the YAML types that a rule file may wrongly contain, as problems print them.
_YAML_KINDS = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}


@dataclass(frozen=True)
class LoadedRule:
    """A Sigma rule and the file it came from."""

    rule: SigmaRule
    path: str
    bundled: bool

    @property
    def title(self) -> str:
        return self.rule.title

    @property
    def rule_id(self) -> str:
        return str(self.rule.id) if self.rule.id else ""

    @property
    def key(self) -> str:
        """Identifier of the rule within one hunt: its id, or its file and title when it has none."""
        return self.rule_id or f"{self.path}:{self.title}"

    @property
    def level(self) -> str:
        return self.rule.level.name.lower() if self.rule.level else ""

    @property
    def tags(self) -> list[str]:
        return [str(tag) for tag in self.rule.tags]

    @property
    def name(self) -> str:
        """The rule's ``name`` attribute, by which correlations and filters may reference it."""
        return self.rule.name or ""


@dataclass(frozen=True)
class LoadedFilter:
    """A Sigma filter (the specification's meta-rule that tunes the rules it names) and its file."""

    filter: SigmaFilter
    path: str
    bundled: bool

    @property
    def title(self) -> str:
        return self.filter.title

    @property
    def filter_id(self) -> str:
        return str(self.filter.id) if self.filter.id else ""

    @property
    def key(self) -> str:
        """Identifier of the filter within one hunt: its id, or its file and title when it has none."""
        return self.filter_id or f"{self.path}:{self.title}"

    @property
    def applies_to_any(self) -> bool:
        """True for ``rules: any`` (or an empty list): the filter tunes every rule of its log source."""
        return isinstance(self.filter.filter.rules, str)

    @property
    def references(self) -> list[str]:
        """The rule ids and names listed under ``filter.rules``; empty for ``rules: any``."""
        if self.applies_to_any:
            return []
        return [reference.reference for reference in self.filter.filter.rules]


@dataclass(frozen=True)
class LoadedCorrelation:
    """A Sigma correlation rule and its file."""

    rule: SigmaCorrelationRule
    path: str
    bundled: bool
    # The threshold placeholders (%name%) whose values fill its timespan and condition.
    placeholders: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return self.rule.title

    @property
    def rule_id(self) -> str:
        return str(self.rule.id) if self.rule.id else ""

    @property
    def name(self) -> str:
        return self.rule.name or ""

    @property
    def key(self) -> str:
        return self.rule_id or f"{self.path}:{self.title}"

    @property
    def level(self) -> str:
        return self.rule.level.name.lower() if self.rule.level else ""

    @property
    def tags(self) -> list[str]:
        return [str(tag) for tag in self.rule.tags]

    @property
    def correlation_type(self) -> str:
        """The type as the specification spells it: event_count, value_count, temporal …"""
        return self.rule.type.name.lower()

    @property
    def references(self) -> list[str]:
        """The rule ids and names that the correlation correlates, in the order written."""
        if self.rule.rules is not None:
            return [reference.reference for reference in self.rule.rules]
        # A temporal correlation with an extended condition may name its rules there only.
        return self.rule.condition.get_referenced_rules()


# The kinds of Sigma document that ``RuleProblem.kind`` names.
KIND_RULE = "rule"
KIND_FILTER = "filter"
KIND_CORRELATION = "correlation"


@dataclass(frozen=True)
class RuleProblem:
    """A rule file, or a rule, filter or correlation in it, that proxyhunt cannot use, with the reason.

    ``rule_id`` and ``name`` are filled when the document got that far, so
    that a correlation or filter naming a set-aside rule can say why it was
    set aside.
    """

    path: str
    message: str
    title: str | None = None
    kind: str = KIND_RULE
    rule_id: str = ""
    name: str = ""

    def __str__(self) -> str:
        name = f" ({self.title})" if self.title else ""
        return f"{self.path}{name}: {self.message}"


@dataclass
class RuleSet:
    """The rules to run, and the ones that were left out with their reasons."""

    rules: list[LoadedRule] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    skipped: list[RuleProblem] = field(default_factory=list)
    filters: list[LoadedFilter] = field(default_factory=list)
    correlations: list[LoadedCorrelation] = field(default_factory=list)
    # References (ids or names) of the rules named by correlations that were left
    # out without ``generate: true``: their rules still give no findings of their own.
    correlation_only: set[str] = field(default_factory=set)

    def correlation_only_rules(self) -> list[LoadedRule]:
        """Return the rules that only feed correlations, so that they give no findings of their own.

        The specification's ``generate`` attribute (default false) states whether
        the rules a correlation names also give findings. That applies whether or
        not the correlation itself can run: a correlation with a bad threshold
        must not turn its helper rule into a detection that flags every request.
        """
        references = set(self.correlation_only)
        for correlation in self.correlations:
            if not correlation.rule.generate:
                references.update(str(reference.reference) for reference in correlation.rule.rules)

        rules: list[LoadedRule] = []
        for reference in sorted(references):
            found = self.find_reference(reference)
            if isinstance(found, LoadedRule) and found not in rules:
                rules.append(found)
        return rules

    def find_reference(self, reference: str) -> LoadedRule | LoadedCorrelation | RuleProblem | None:
        """Return the rule or correlation that a reference names, by id and then by ``name``.

        A rule that was set aside (log source not web-proxy traffic, duplicate
        id) or rejected is returned as its ``RuleProblem``, so the caller can
        give the reason. Ids compare case-insensitively, as UUIDs do; names
        compare exactly, as pySigma compares them.
        """
        candidates: list[LoadedRule | LoadedCorrelation] = [*self.rules, *self.correlations]
        for candidate in candidates:
            if candidate.rule_id and candidate.rule_id.lower() == reference.lower():
                return candidate
        for candidate in candidates:
            if candidate.name and candidate.name == reference:
                return candidate
        for problem in [*self.skipped, *self.problems]:
            if problem.kind == KIND_FILTER:
                continue
            if (problem.rule_id and problem.rule_id.lower() == reference.lower()) or (
                problem.name and problem.name == reference
            ):
                return problem
        return None


def bundled_rule_files() -> list[Path]:
    """Return the rule files that a hunt runs by default: ``bundled/*.yml`` and ``bundled/rclone/**/*.yml``.

    The exclusions under ``bundled/exclusions/`` run only when named with
    ``--exclusions``, and examples files are never rules.
    """
    folder = Path(str(resources.files("proxyhunt.rules") / "bundled"))
    files = [entry for entry in folder.glob("*") if entry.is_file()]
    files += [entry for entry in (folder / BUNDLED_PACKS).rglob("*") if entry.is_file()]
    return sorted(entry for entry in files if entry.name.endswith(RULE_SUFFIXES) and not is_examples_file(entry))


def is_examples_file(path: str | Path) -> bool:
    """True for a rule's examples file (``X.examples.yml`` beside ``X.yml``), which is never a rule file."""
    return Path(path).name.lower().endswith(EXAMPLES_SUFFIXES)


def find_rule_files(path: str) -> tuple[list[Path], RuleProblem | None]:
    """Return the rule files at ``path``: a file, or a directory searched recursively.

    Hidden files and directories (such as ``.github/workflows`` in a checkout of
    a rule repository) are left out because their YAML files are not rules, and
    so are examples files (``*.examples.yml``), which ``proxyhunt rules test`` reads.
    """
    candidate = Path(path)
    if candidate.is_dir():
        files = sorted(
            item
            for item in candidate.rglob("*")
            if item.is_file()
            and item.suffix.lower() in RULE_SUFFIXES
            and not is_examples_file(item)
            and not any(part.startswith(".") for part in item.relative_to(candidate).parts)
        )
        if not files and any(is_examples_file(item) for item in candidate.rglob("*")):
            return [], RuleProblem(path, "the directory contains only examples files (*.examples.yml), no rule files")
        if not files:
            return [], RuleProblem(path, "the directory contains no .yml or .yaml files")
        return files, None
    if candidate.is_file():
        return [candidate], None
    # The same message serves hunt --rules and the path arguments of rules check and rules test.
    return [], RuleProblem(
        path, "rule file not found: no file or directory has this path; give the path of a Sigma rule file or a directory of them"
    )


def is_zeek_http(logsource: SigmaLogSource) -> bool:
    """True when a rule's log source is Zeek http.log."""
    return logsource.product == "zeek" and logsource.service == "http"


def is_proxy_rule(item: SigmaRule | SigmaLogSource) -> bool:
    """True when a rule's (or filter's) log source is web-proxy traffic (category proxy, or Zeek http)."""
    logsource = item if isinstance(item, SigmaLogSource) else item.logsource
    if logsource.category == "proxy":
        return True
    return is_zeek_http(logsource)


def load_rules(paths: list[str], include_bundled: bool = True, lists: PlaceholderLists | None = None) -> RuleSet:
    """Load the bundled rules (unless ``include_bundled`` is False) and the rules, filters and correlations under ``paths``.

    ``lists`` gives the values of the correlation threshold placeholders (see
    ``proxyhunt.rules.thresholds``); by default the bundled default lists.
    ``|expand`` placeholders are left for ``proxyhunt.rules.placeholders``.
    """
    lists = lists if lists is not None else load_default_lists()
    ruleset = RuleSet()
    seen_ids: dict[str, tuple[str, object]] = {}

    sources: list[tuple[Path, bool]] = []
    if include_bundled:
        sources += [(path, True) for path in bundled_rule_files()]
    for path in paths:
        if is_examples_file(path) and Path(path).is_file():
            message = "an examples file, not a rule file; run proxyhunt rules test on the rule file beside it"
            ruleset.skipped.append(RuleProblem(path, message))
            continue
        files, problem = find_rule_files(path)
        if problem:
            ruleset.problems.append(problem)
        sources += [(file, False) for file in files]

    for file, bundled in sources:
        for loaded in _load_file(file, bundled, ruleset, lists):
            identifier = loaded.filter_id if isinstance(loaded, LoadedFilter) else loaded.rule_id
            if identifier and identifier in seen_ids:
                first_path, first_definition = seen_ids[identifier]
                if _definition(loaded) == first_definition:
                    # The same rule twice, such as SigmaHQ's copy of a bundled rule: run it once.
                    message = f"same id and detection as the rule already loaded from {first_path}"
                    ruleset.skipped.append(RuleProblem(str(file), message, loaded.title, _kind_of(loaded)))
                else:
                    # A different rule under a used id would otherwise be dropped without a word.
                    message = (
                        f"its id {identifier} is already used by a different rule in {first_path}, so it was not run; "
                        "give it an id of its own"
                    )
                    ruleset.problems.append(RuleProblem(str(file), message, loaded.title, _kind_of(loaded)))
                continue
            if identifier:
                seen_ids[identifier] = (str(file), _definition(loaded))
            if isinstance(loaded, LoadedFilter):
                ruleset.filters.append(loaded)
            elif isinstance(loaded, LoadedCorrelation):
                ruleset.correlations.append(loaded)
            else:
                ruleset.rules.append(loaded)
    return ruleset


def _definition(loaded: LoadedRule | LoadedFilter | LoadedCorrelation) -> object:
    """Return what decides what a rule, filter or correlation matches, leaving out its metadata."""
    if isinstance(loaded, LoadedFilter):
        sigma = loaded.filter
        return (sigma.logsource.to_dict(), sigma.filter.to_dict() if hasattr(sigma.filter, "to_dict") else repr(sigma.filter))
    if isinstance(loaded, LoadedCorrelation):
        return loaded.rule.to_dict().get("correlation")
    # The level is part of it, because a copy that raises or lowers it changes the level of its findings.
    return (loaded.rule.logsource.to_dict(), loaded.rule.detection.to_dict(), loaded.level)


def _kind_of(item: object) -> str:
    if isinstance(item, (SigmaFilter, LoadedFilter)):
        return KIND_FILTER
    if isinstance(item, (SigmaCorrelationRule, LoadedCorrelation)):
        return KIND_CORRELATION
    return KIND_RULE


def _describe_logsource(logsource: SigmaLogSource) -> str:
    fields = (("category", logsource.category), ("product", logsource.product), ("service", logsource.service))
    return ", ".join(f"{key} {value}" for key, value in fields if value) or "none"


_UNKNOWN_MODIFIER = re.compile(r"Unknown modifier '([^']*)'")


def _explained(error: Exception, text: str) -> str:
    """Return pySigma's message, with the line and the likely modifier for an unknown one."""
    message = str(error)
    unknown = _UNKNOWN_MODIFIER.search(message) if isinstance(error, SigmaModifierError) else None
    if unknown is None:
        return message

    name = unknown.group(1)
    # The key may be quoted, so the modifier may be followed by a quote before the colon.
    pattern = rf"\|{re.escape(name)}\s*['\"]?\s*[|:]"
    lines = [number for number, line in enumerate(text.splitlines(), 1) if re.search(pattern, line)]
    where = f" at line {lines[0]}" if lines else ""
    close = difflib.get_close_matches(name.lower(), modifier_mapping, n=1)
    fix = f"did you mean '{close[0]}'?" if close else f"the modifiers are {', '.join(sorted(modifier_mapping))}"
    return f"unknown Sigma modifier '{name}'{where}; {fix}"


def _load_file(
    file: Path, bundled: bool, ruleset: RuleSet, lists: PlaceholderLists
) -> list[LoadedRule | LoadedFilter | LoadedCorrelation]:
    location = str(file)
    read = _read_documents(file, ruleset)
    if read is None:
        return []
    documents, text = read
    documents, threshold_names = _substitute_thresholds(documents, lists, text, location, ruleset)

    try:
        # References are resolved later across every loaded file, and filters
        # are applied to findings by proxyhunt.tuning rather than merged into
        # the rules' conditions, so pySigma does neither here.
        collection = SigmaCollection.from_dicts(
            documents, collect_errors=True, collect_filters=True, resolve_references=False
        )
    except SigmaError as error:
        ruleset.problems.append(RuleProblem(location, f"not a valid Sigma rule: {error}"))
        return []
    except (TypeError, AttributeError, KeyError) as error:
        # pySigma 1.5 checks the types of some values only by using them, for
        # example a field name that YAML read as a number.
        ruleset.problems.append(
            RuleProblem(location, f"not a valid Sigma rule: pySigma could not read it ({type(error).__name__}: {error})")
        )
        return []

    rule_errors = [error for item in [*collection.rules, *collection.filters] for error in item.errors]
    for error in collection.errors:
        if error not in rule_errors:
            ruleset.problems.append(RuleProblem(location, f"rejected by pySigma: {error}"))

    loaded: list[LoadedRule | LoadedFilter | LoadedCorrelation] = []
    for item in [*collection.rules, *collection.filters]:
        title = getattr(item, "title", None)
        kind = _kind_of(item)
        identity = {"rule_id": str(item.id) if item.id else "", "name": item.name or ""}
        errors = getattr(item, "errors", [])
        if errors:
            reasons = "; ".join(_explained(error, text) for error in errors)
            ruleset.problems.append(RuleProblem(location, f"rejected by pySigma: {reasons}", title, kind, **identity))
            continue
        problem = detection_problem(item)
        if problem:
            ruleset.problems.append(RuleProblem(location, problem, title, kind, **identity))
            continue
        if isinstance(item, SigmaCorrelationRule):
            # A correlation has no log source: the rules it names decide whether it can run.
            names = tuple(threshold_names.get(_document_key(item.id, item.title), ()))
            loaded.append(LoadedCorrelation(item, location, bundled, names))
            continue
        if not is_proxy_rule(item.logsource):
            ruleset.skipped.append(
                RuleProblem(
                    location,
                    f"log source is not web-proxy traffic ({_describe_logsource(item.logsource)})",
                    title,
                    kind,
                    **identity,
                )
            )
            continue
        if isinstance(item, SigmaFilter):
            loaded.append(LoadedFilter(item, location, bundled))
        else:
            loaded.append(LoadedRule(item, location, bundled))
    return loaded


def _substitute_thresholds(
    documents: list[dict], lists: PlaceholderLists, text: str, location: str, ruleset: RuleSet
) -> tuple[list[dict], dict[str, list[str]]]:
    """Return the documents with correlation threshold placeholders filled, and the names each one used.

    A correlation whose placeholder has no usable value is left out and
    recorded as not runnable; the other documents of the file still load.
    """
    substituted: list[dict] = []
    names: dict[str, list[str]] = {}
    for document in documents:
        try:
            substitution = substitute_thresholds(document, lists, text, location)
        except ThresholdError as error:
            title = document.get("title") if isinstance(document.get("title"), str) else None
            rule_id = str(document.get("id") or "")
            name = str(document.get("name") or "")
            ruleset.problems.append(
                RuleProblem(location, f"not runnable: {error}", title, KIND_CORRELATION, rule_id, name)
            )
            correlation = document.get("correlation")
            if isinstance(correlation, dict) and not correlation.get("generate", False):
                references = correlation.get("rules")
                references = references if isinstance(references, list) else [references]
                ruleset.correlation_only.update(str(reference) for reference in references if reference)
            continue
        substituted.append(substitution.document)
        if substitution.names:
            names[_document_key(document.get("id"), document.get("title"))] = substitution.names
    return substituted, names


def _document_key(rule_id: object, title: object) -> str:
    """Return a key that finds a parsed correlation's document again: its id, else its title."""
    return str(rule_id).lower() if rule_id else f"title:{title}"


def _read_documents(file: Path, ruleset: RuleSet) -> tuple[list[dict], str] | None:
    """Return the YAML documents of a rule file and its text, or None after recording why they cannot be used."""
    location = str(file)
    try:
        data = file.read_bytes()
    except OSError as error:
        ruleset.problems.append(RuleProblem(location, f"cannot be read ({error.strerror})"))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        ruleset.problems.append(
            RuleProblem(location, f"not valid UTF-8 at line {line} (byte {error.start}); save the file as UTF-8")
        )
        return None

    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        ruleset.problems.append(RuleProblem(location, f"invalid YAML{where}: {problem}; fix the YAML syntax"))
        return None
    except ValueError as error:
        # PyYAML raises a plain ValueError for a value of the right form but out of
        # range, such as the date 2023-13-45, and gives no position for it.
        ruleset.problems.append(RuleProblem(location, f"invalid YAML value: {error}; fix the value"))
        return None

    if all(document is None for document in documents):
        ruleset.problems.append(RuleProblem(location, "contains no Sigma rule (the file has no YAML content)"))
        return None
    for number, document in enumerate(documents, start=1):
        if document is not None and not isinstance(document, dict):
            kind = _YAML_KINDS.get(type(document), type(document).__name__)
            ruleset.problems.append(
                RuleProblem(
                    location,
                    f"YAML document {number} is a {kind}, not a Sigma rule; "
                    "a rule is a mapping with title, logsource and detection",
                )
            )
            return None
    # An empty document, such as the one after a trailing '---', contains no rule.
    return [document for document in documents if document is not None], text
