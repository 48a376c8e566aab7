"""Configuration reference generated from the schema dataclasses.

    python -m rlinf_isaac.config.reference > docs/configuration.md

Walks the dataclass tree from :class:`~rlinf_isaac.config.schema.Config` (fields, type hints,
nested dataclasses also inside ``Optional`` / ``dict`` / ``list`` / ``tuple`` annotations) and
writes one markdown section per dataclass: every key with its type, default and the description
taken from the comments next to the field in the source (the comment lines directly above the
field and its trailing ``# ...`` comment), plus the dataclass's docstring. Nothing here lists the
fields: a field added to the schema appears once the reference is regenerated.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import sys
import textwrap
import tokenize
import types
from functools import lru_cache
from typing import Any, Literal, Sequence, Union, get_args, get_origin, get_type_hints

from rlinf_isaac.config.schema import Config

__all__ = ["Section", "collect_sections", "field_comments", "render", "main"]

COMMAND = "python -m rlinf_isaac.config.reference > docs/configuration.md"

# Order of the top-level sections (the order of RLinf's embodied YAML files); a top-level
# field not named here follows in definition order.
_TOP_ORDER = ("cluster", "runner", "algorithm", "env", "rollout", "actor")


@dataclasses.dataclass
class Section:
    """One dataclass of the tree and every dotted path at which it is used."""

    cls: type
    paths: list[tuple[str, ...]]

    @property
    def prefix(self) -> str:
        """The dotted prefix of its keys; path components that differ become ``<a|b>``."""
        return _collapse(self.paths)


def _collapse(paths: list[tuple[str, ...]]) -> str:
    if not paths or not paths[0]:
        return ""
    if len({len(p) for p in paths}) != 1:
        return " / ".join(".".join(p) for p in paths)
    parts = []
    for i in range(len(paths[0])):
        seen: list[str] = []
        for p in paths:
            if p[i] not in seen:
                seen.append(p[i])
        parts.append(seen[0] if len(seen) == 1 else "<" + "|".join(seen) + ">")
    return ".".join(parts)


def _family(tp: Any) -> list[type] | None:
    """The registered members of a family base class (one that defines ``registered_subclasses``,
    e.g. ``actor.model``'s PolicyConfig); None for any other annotation."""
    if isinstance(tp, type) and "registered_subclasses" in vars(tp):
        return list(tp.registered_subclasses())
    return None


def _nested_dataclasses(tp: Any) -> list[tuple[type, tuple[str, ...]]]:
    """Dataclasses inside annotation ``tp``, each with the path suffix that reaches it."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        family = _family(tp)  # a registered family: document each member
        return [(c, ()) for c in family] if family is not None else [(tp, ())]
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal or not args:
        return []
    out: list[tuple[type, tuple[str, ...]]] = []
    if origin is dict:
        for cls, suffix in _nested_dataclasses(args[-1]):
            out.append((cls, ("<name>",) + suffix))
    elif origin in (list, tuple):
        for a in args:
            if a is not Ellipsis:
                for cls, suffix in _nested_dataclasses(a):
                    out.append((cls, ("[i]",) + suffix))
    else:  # Union / Optional and other generics: the same path
        for a in args:
            out.extend(_nested_dataclasses(a))
    return out


def _ordered_fields(cls: type, top: bool) -> list[dataclasses.Field]:
    fields = [f for f in dataclasses.fields(cls) if f.init]
    if not top:
        return fields
    rank = {name: i for i, name in enumerate(_TOP_ORDER)}
    return sorted(fields, key=lambda f: (rank.get(f.name, len(rank)), fields.index(f)))


def collect_sections(root: type = Config) -> list[Section]:
    """Every dataclass reachable from ``root``, in depth-first order of first use."""
    sections: dict[type, Section] = {}

    def visit(cls: type, path: tuple[str, ...], stack: tuple[type, ...]) -> None:
        if cls in sections:
            sections[cls].paths.append(path)
        else:
            sections[cls] = Section(cls, [path])
        if cls in stack:  # a recursive schema: list it, do not descend again
            return
        hints = get_type_hints(cls)
        for f in _ordered_fields(cls, top=not path):
            for sub, suffix in _nested_dataclasses(hints[f.name]):
                visit(sub, path + (f.name,) + suffix, stack + (cls,))

    visit(root, (), ())
    return list(sections.values())


# --- comments from the source ------------------------------------------------------------


@lru_cache(maxsize=None)
def _module_source(path: str) -> tuple[ast.Module, dict[int, str], frozenset[int]]:
    """The module's AST, its comments by line and the lines that hold only a comment."""
    with open(path, encoding="utf-8") as fh:
        src = fh.read()
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string[1:].strip()
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENDMARKER, tokenize.ENCODING):
            for line in range(tok.start[0], tok.end[0] + 1):
                code_lines.add(line)
    comment_only = frozenset(line for line in comments if line not in code_lines)
    return ast.parse(src), comments, comment_only


def _class_node(tree: ast.Module, klass: type) -> ast.ClassDef | None:
    """The class statement of ``klass``: by its qualified name, else (a class defined in a
    function) by its name and the line ``inspect`` finds it at."""
    body: Sequence[ast.stmt] = tree.body
    node = None
    for part in klass.__qualname__.split("."):
        node = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == part), None)
        if node is None:
            break
        body = node.body
    if node is not None:
        return node
    candidates = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == klass.__name__]
    if len(candidates) == 1:
        return candidates[0]
    try:
        line = inspect.getsourcelines(klass)[1]
    except (OSError, TypeError):
        return None
    for n in candidates:
        if line in (n.lineno, *(d.lineno for d in n.decorator_list)):
            return n
    return None


def field_comments(cls: type) -> dict[str, str]:
    """``{field: description}`` from the comments around each field's line in ``cls``'s source.

    A field's description is the block of comment-only lines directly above it followed by the
    comment(s) on its own line(s). Fields inherited from a base dataclass take that class's.
    """
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass is object:
            continue
        try:
            path = inspect.getsourcefile(klass)
        except TypeError:
            continue
        if path is None:
            continue
        tree, comments, comment_only = _module_source(path)
        node = _class_node(tree, klass)
        if node is None:
            continue
        for stmt in node.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            above: list[str] = []
            line = stmt.lineno - 1
            while line in comment_only:
                above.insert(0, comments[line])
                line -= 1
            own = [comments[ln] for ln in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)
                   if ln in comments and ln not in comment_only]
            out[stmt.target.id] = " ".join(t for t in above + own if t)
    return out


# --- rendering -----------------------------------------------------------------------------


def _anchor(section: Section) -> str:
    return section.cls.__name__.lower()


def _type_text(tp: Any, names: dict[type, Section]) -> str:
    if tp is Any:
        return "any"
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and tp in names:
        return f"[{tp.__name__}](#{_anchor(names[tp])})"
    family = _family(tp)
    if family is not None:  # by model_name: one of the registered configs
        return "one of " + ", ".join(_type_text(c, names) for c in family)
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(f"`{_value_text(a)}`" for a in args)
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        text = " or ".join(_type_text(a, names) for a in rest)
        return text + " or null" if len(rest) < len(args) else text
    if origin is dict:
        k, v = args or (Any, Any)
        return f"mapping of {_type_text(k, names)} to {_type_text(v, names)}"
    if origin is list:
        return f"list of {_type_text(args[0] if args else Any, names)}"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_text(args[0], names)}"
        return "[" + ", ".join(_type_text(a, names) for a in args) + "]"
    return getattr(tp, "__name__", str(tp))


def _value_text(v: Any) -> str:
    """A default as it would be written in YAML."""
    if v is None:
        return "null"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, str):
        return v if v else '""'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_value_text(x)}" for k, x in v.items()) + "}"
    return repr(v)


def _default_text(f: dataclasses.Field, names: dict[type, Section], hint: Any = None) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value) and (type(value) in names or _family(hint) is not None):
        return "see its section"
    return f"`{_value_text(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(root: type = Config) -> str:
    """The whole reference as markdown (the content of docs/configuration.md)."""
    sections = collect_sections(root)
    names = {s.cls: s for s in sections}
    lines = [
        "# Configuration reference",
        "",
        f"<!-- Generated by `{COMMAND}` from the dataclasses in "
        "rlinf_isaac/config/schema.py; edit their comments, not this file. -->",
        "",
        "Every run is one `Config`, composed by Hydra from the YAML files in `config/` (experiment",
        "files at the top, groups `env/`, `model/`, `cluster/`, `algorithm/`) and the `key=value`",
        "overrides on the command line, then checked against the tables below before any worker",
        "starts: an unknown key, a value of the wrong type or outside its range is an error that",
        "names the key. A key without a default must be set by the config.",
        "",
        "Sections:",
        "",
    ]
    for s in sections:
        title = f"`{s.prefix}.*`" if s.prefix else "top level"
        lines.append(f"- [{title}](#{_anchor(s)}) ({s.cls.__name__})")
    for s in sections:
        lines += ["", f'<a id="{_anchor(s)}"></a>', ""]
        title = f"`{s.prefix}.*`" if s.prefix else "Top level"
        lines.append(f"## {title} — {s.cls.__name__}")
        lines.append("")
        doc = inspect.getdoc(s.cls)
        if doc and not doc.startswith(f"{s.cls.__name__}("):  # not dataclass's generated signature
            lines += [textwrap.dedent(doc).strip().replace("``", "`"), ""]
        hints = get_type_hints(s.cls)
        comments = field_comments(s.cls)
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        for f in _ordered_fields(s.cls, top=not s.prefix):
            key = f"{s.prefix}.{f.name}" if s.prefix else f.name
            row = [f"`{key}`", _type_text(hints[f.name], names), _default_text(f, names, hints[f.name]),
                   comments.get(f.name, "")]
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reference (the content of docs/configuration.md)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        print(f"usage: {COMMAND}", file=sys.stderr)
        return 2
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
