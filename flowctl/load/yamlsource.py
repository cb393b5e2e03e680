"""YAML text → plain data plus the node tree that knows where every value came from.

One parse: libyaml (``CSafeLoader``) composes the node tree, and a small constructor here builds
the data from it, so line numbers cost nothing extra on the happy path: spans are looked up in
the kept node tree only when something must be reported. This module has no schema knowledge.

Safety against hostile files: only the standard YAML tags are accepted (no Python objects),
alias expansion is bounded ("billion laughs"), binary data, an empty file and byte-order marks
give clear diagnostics. Mapping keys are kept as the text written in the file (``on:`` stays
``"on"``, ``123:`` stays ``"123"``), and a key repeated in one mapping is reported instead of
silently keeping the last one.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from flowctl.errors import Diagnostic, Span

#: Most values a document may expand to through aliases before it counts as an alias bomb.
MAX_EXPANDED_NODES = 2_000_000

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:binary",
}

PathPart = str | int


@dataclass
class Document:
    """Parsed YAML: ``data`` (plain dicts, lists, scalars) and where each piece came from."""

    file: str
    text: str
    data: Any
    root: yaml.Node | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    _indexes: dict[int, dict[str, tuple[yaml.Node | None, yaml.Node]]] = field(default_factory=dict, repr=False)

    def span(self, path: Sequence[PathPart], *, key: bool = False) -> Span:
        """The span of the value at ``path`` (or of its key with ``key=True``).

        Walks the node tree; a path that leaves it (a missing key) gives the span of the deepest
        node it reached, which is where the user must add or fix something. Each mapping is
        indexed on first use, so spans for every step of a large file cost linear time.
        """
        node = self.root
        key_node: yaml.Node | None = None
        for part in path:
            if node is None:
                break
            found = self._child(node, part)
            if found is None:
                break
            key_node, node = found
        target = key_node if key and key_node is not None else node
        return node_span(self.file, target)

    def _child(self, node: yaml.Node, part: PathPart) -> tuple[yaml.Node | None, yaml.Node] | None:
        if isinstance(node, yaml.MappingNode):
            index = self._indexes.get(id(node))
            if index is None:
                index = self._indexes[id(node)] = _mapping_index(node)
            return index.get(str(part))
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            return None, node.value[part]
        return None


def _mapping_index(node: yaml.MappingNode) -> dict[str, tuple[yaml.Node | None, yaml.Node]]:
    """Key text → (key node, value node); the last of duplicate keys wins, as in the data;
    keys merged in with ``<<`` count where the mapping does not set them itself."""
    index: dict[str, tuple[yaml.Node | None, yaml.Node]] = {}
    merged: dict[str, tuple[yaml.Node | None, yaml.Node]] = {}
    for k, v in node.value:
        if k.tag == _MERGE:
            for m in v.value if isinstance(v, yaml.SequenceNode) else [v]:
                if isinstance(m, yaml.MappingNode):
                    for name, pair in _mapping_index(m).items():
                        merged.setdefault(name, pair)
        elif isinstance(k, yaml.ScalarNode):
            index[k.value] = (k, v)
    for name, pair in merged.items():
        index.setdefault(name, pair)
    return index


def node_span(file: str, node: yaml.Node | None) -> Span:
    if node is None:
        return Span(file, 1, 1, 1, 1)
    s, e = node.start_mark, node.end_mark
    return Span(file, s.line + 1, s.column + 1, e.line + 1, e.column + 1)


def _mark_span(file: str, mark: Any) -> Span:
    if mark is None:
        return Span(file, 1, 1)
    return Span(file, mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 2)


def decode(raw: bytes, file: str) -> tuple[str | None, Diagnostic | None]:
    """Bytes → text; byte-order marks are honoured, binary data is a diagnostic."""
    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(enc), None
            except UnicodeDecodeError as exc:
                return None, _binary(file, raw, exc.start)
    nul = raw.find(b"\x00")
    if nul >= 0:
        return None, _binary(file, raw, nul)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, _binary(file, raw, exc.start)


def _binary(file: str, raw: bytes, offset: int) -> Diagnostic:
    line = raw.count(b"\n", 0, offset) + 1
    col = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return Diagnostic(
        Span(file, line, col),
        f"not a UTF-8 text file (byte 0x{raw[offset]:02x} at offset {offset})",
        hint="a pipeline is a YAML text file saved as UTF-8",
        code="encoding",
    )


def parse(raw: bytes, file: str) -> Document:
    """Parse ``raw`` YAML; problems are in ``Document.diagnostics`` (``data`` is None on failure)."""
    text, problem = decode(raw, file)
    if text is None:
        return Document(file, "", None, None, [problem] if problem else [])
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        return Document(file, text, None, None, [Diagnostic(
            Span(file, 1, 1), "the file is empty",
            hint="a pipeline needs at least `version: 1`, `name:` and `steps:` (try `flowctl init`)",
            code="empty")])
    try:
        loader = yaml.CSafeLoader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        return Document(file, text, None, None, [_yaml_error(file, text, exc)])
    except yaml.YAMLError as exc:  # errors without a mark (rare: reader errors)
        return Document(file, text, None, None, [Diagnostic(Span(file, 1, 1), f"invalid YAML: {exc}", code="yaml")])
    doc = Document(file, text, None, root)
    if root is None:
        doc.diagnostics.append(Diagnostic(Span(file, 1, 1), "the file is empty", code="empty",
                                          hint="a pipeline needs at least `version: 1`, `name:` and `steps:`"))
        return doc
    builder = _Builder(file)
    try:
        doc.data = builder.build(root)
    except RecursionError:
        doc.diagnostics.append(Diagnostic(node_span(file, root), "the document is nested too deeply",
                                          code="depth", hint="flatten the structure"))
        return doc
    doc.diagnostics.extend(builder.diagnostics)
    if builder.aliases and not builder.diagnostics:
        size = _expanded_size(root)
        if size < 0:
            doc.diagnostics.append(Diagnostic(
                node_span(file, root), "an alias refers to the mapping or list that contains it",
                hint="recursive aliases cannot describe a pipeline; copy the values instead",
                code="alias-recursive"))
            doc.data = None
        elif size > MAX_EXPANDED_NODES:
            doc.diagnostics.append(Diagnostic(
                node_span(file, root),
                f"aliases expand this document to more than {MAX_EXPANDED_NODES:,} values",
                hint="this looks like an alias bomb ('billion laughs'); use fewer nested aliases",
                code="alias-bomb"))
            doc.data = None
    return doc


def _yaml_error(file: str, text: str, exc: yaml.MarkedYAMLError) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if exc.context_mark is not None and (mark is None or mark.line >= lines or "quoted scalar" in (exc.context or "")):
        # An error found only at the end of the file (an unterminated quote or bracket) is
        # reported where the unfinished construct starts: that is where the fix goes.
        mark = exc.context_mark
    problem = exc.problem or "invalid YAML"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.context not in problem:
        message = f"invalid YAML: {exc.context}: {problem}"
    flow = _flow_error(file, text, exc)
    if flow is not None:
        return flow
    hint = None
    if "'\\t'" in problem or "\t" in problem or "tab" in problem.lower():
        hint = "indent with spaces; YAML does not allow tab characters for indentation"
    elif "expected a single document" in (exc.context or "") or "but found another document" in problem:
        message = "the file holds more than one YAML document"
        hint = "a pipeline file holds one document: remove the extra `---`"
    elif "mapping values are not allowed" in problem:
        hint = "a value containing ': ' must be quoted, or the indentation is off"
    elif "found undefined alias" in problem:
        hint = "define the anchor (&name) before using the alias (*name)"
    elif mark is not None and mark.line < len(text.splitlines()) and "\t" in text.splitlines()[mark.line][: mark.column + 1]:
        hint = "indent with spaces; YAML does not allow tab characters for indentation"
    return Diagnostic(_mark_span(file, mark), message, hint=hint, code="yaml")


_FLOW = {"while parsing a flow sequence": ("list", "[", "]"), "while parsing a flow mapping": ("mapping", "{", "}")}


def _flow_error(file: str, text: str, exc: yaml.MarkedYAMLError) -> Diagnostic | None:
    """A flow collection (``[…]``/``{…}``) that does not go on as YAML expects: name the line
    where it was opened (issue 13), and when a ``${{ … }}`` inside it is the cause (its braces
    are flow indicators), say to quote it or use block style."""
    shape = _FLOW.get(exc.context or "")
    opened, mark = exc.context_mark, exc.problem_mark
    if shape is None or opened is None or mark is None:
        return None
    kind, opener, closer = shape
    where = f"line {opened.line + 1}, column {opened.column + 1}"
    # libyaml stops at the '{' right after the '$' of an unquoted expression.
    expression = text.rfind("${{", opened.index, mark.index + 3)
    if expression >= 0 and expression <= mark.index <= expression + 2:
        line_end = text.find("\n", expression)
        end = text.find("}}", expression, len(text) if line_end < 0 else line_end)
        written = text[expression : end + 2] if end >= 0 else "${{ … }}"
        line = text.count("\n", 0, expression)
        col = expression - (text.rfind("\n", 0, expression) + 1)
        return Diagnostic(
            Span(file, line + 1, col + 1, line + 1, col + 4),
            f"invalid YAML: ${{{{ … }}}} inside the flow {kind} opened with '{opener}' at {where}: "
            f"YAML reads its braces as part of the {kind}",
            hint=f"quote the value that holds it (\"… {written} …\") or write the {kind} in block style, one entry per line",
            code="yaml",
        )
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    at = opened if mark.line >= lines else mark  # at the very end of the file: where it was opened
    return Diagnostic(
        _mark_span(file, at),
        f"invalid YAML: the {kind} opened with '{opener}' at {where} is not closed here: expected ',' or '{closer}'",
        hint=f"close it with '{closer}' (and separate its entries with ','), or write it in block style",
        code="yaml",
    )


class _Builder:
    """Builds plain data from composed nodes, reporting what plain ``yaml.safe_load`` hides."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        self.memo: dict[int, Any] = {}
        self.aliases = False
        self._scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node) -> Any:
        tag = node.tag
        if tag == _STR:  # the common case first
            value = node.value
            if "\x00" in value:  # no command, variable or path can hold one
                self._error(node, "the value holds a NUL character (a \\0 escape)", code="nul",
                            hint="remove it; for an octal escape in a command, use single quotes: 'printf \"\\033\"'")
            return value
        key = id(node)
        if key in self.memo:
            self.aliases = True
            return self.memo[key]
        if tag == _MAP:
            out: dict[str, Any] = {}
            self.memo[key] = out
            self._mapping(node, out)
            return out
        if tag == _SEQ:
            seq: list[Any] = []
            self.memo[key] = seq
            build = self.build
            seq.extend(build(child) for child in node.value)
            return seq
        if isinstance(node, yaml.ScalarNode) and tag in _SCALAR_TAGS:
            try:
                value = self._scalars.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                self._error(node, f"invalid value {node.value!r}: {exc}")
                value = node.value
            if tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"):
                value = node.value  # keep dates and binary as the text written
            elif isinstance(value, float) and not math.isfinite(value):
                self._error(node, f"{node.value!r} is not a finite number", code="number",
                            hint="no pipeline value can be infinite or NaN; quote it if you meant text")
            self.memo[key] = value
            return value
        self._error(
            node,
            f"unsupported YAML tag {tag!r}",
            hint="pipelines use plain YAML values; remove the tag (Python object tags are never loaded)",
            code="tag",
        )
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        self.memo[key] = value
        return value

    def _mapping(self, node: yaml.MappingNode, out: dict[str, Any]) -> None:
        seen: dict[str, yaml.Node] = {}
        merges: list[yaml.Node] = []
        build = self.build
        for knode, vnode in node.value:
            if knode.tag == _MERGE:
                merges.append(vnode)
                continue
            if not isinstance(knode, yaml.ScalarNode):
                self._error(knode, "a mapping key must be a plain value, not a list or mapping", code="key")
                continue
            name = knode.value
            if name in seen:
                first = seen[name].start_mark
                self._error(
                    knode,
                    f"duplicate key {name!r} (first defined at line {first.line + 1})",
                    hint="YAML would silently keep only the last one: remove or rename one of them",
                    code="duplicate-key",
                )
            seen[name] = knode
            out[name] = build(vnode)
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for src in sources:
                value = build(src)
                if not isinstance(value, dict):
                    self._error(src, "a merge key (<<) takes a mapping or a list of mappings", code="merge")
                    continue
                for k, v in value.items():
                    out.setdefault(k, v)

    def _error(self, node: yaml.Node, message: str, *, hint: str | None = None, code: str = "yaml") -> None:
        self.diagnostics.append(Diagnostic(node_span(self.file, node), message, hint=hint, code=code))


class _Recursive(Exception):
    pass


def _expanded_size(root: yaml.Node) -> int:
    """Values in the tree with every alias expanded (memoised: linear); -1 for a recursive alias."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Recursive
        active.add(key)
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in node.value)
        else:
            total = 1
        active.discard(key)
        sizes[key] = total
        return total

    try:
        return size(root)
    except _Recursive:
        return -1


__all__ = ["MAX_EXPANDED_NODES", "Document", "decode", "node_span", "parse"]
