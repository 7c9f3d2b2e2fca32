"""MkDocs hooks of the documentation site (wired in mkdocs.yml).

1. The reference must be complete. After the pages are read, every name in
   ``fluidcloud_async.__all__``, ``fluidcloud_async.emulator.__all__``, the resource
   namespaces (``fc.files`` ...), ``fluidcloud_async.dask.__all__`` and the pytest
   plugin's fixtures must have a ``::: path``
   directive on some page; each of them, and every public method or property of a public
   class, needs a docstring in Markdown (no reStructuredText roles) whose ``Args:`` names
   every parameter. Anything missing fails the build, listed by name.
2. ``<!-- include: PATH [from "HEADING"] -->`` embeds a repository file at build time, so
   the page and the file cannot drift: the Benchmarks page embeds BENCHMARKS.md (written by
   ``nox -s bench``, whose plot is copied into the site), the emulator guide the emulator's
   own notes.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from typing import Any

import griffe
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.fluidcloud_docs")

ROOT = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.M)

_documented: set[str] = set()


# ---------------------------------------------------------------------------- coverage


def expected_names() -> list[str]:
    """Dotted paths the reference must cover, under their public spelling."""
    import fluidcloud_async
    import fluidcloud_async.emulator
    import fluidcloud_async.resources

    names = [f"fluidcloud_async.{n}" for n in fluidcloud_async.__all__]
    names += [
        f"fluidcloud_async.resources.{n}" for n in fluidcloud_async.resources.__all__
    ]
    names += [
        f"fluidcloud_async.emulator.{n}" for n in fluidcloud_async.emulator.__all__
    ]
    names += ["fluidcloud_async.pytest_plugin"]
    # An optional extra's module, read without importing it (Dask need not be installed).
    dask = _static_all(ROOT / "fluidcloud_async" / "dask.py")
    names += [f"fluidcloud_async.dask.{n}" for n in dask]
    return names


def _static_all(path: Path) -> list[str]:
    if not path.exists():
        return []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    return []


def _public_members(
    obj: griffe.Object | griffe.Alias,
) -> list[griffe.Object | griffe.Alias]:
    """Own public methods and properties of a class (not inherited, not dunder)."""
    members = []
    for name, member in obj.members.items():
        if name.startswith("_"):
            continue
        if member.is_alias:
            continue  # re-exported from elsewhere: documented where it lives
        if member.is_function or (member.is_attribute and "property" in member.labels):
            members.append(member)
    return members


def _has_docstring(obj: griffe.Object | griffe.Alias) -> bool:
    return bool(obj.docstring and obj.docstring.value.strip())


RST = re.compile(r":(?:class|meth|func|data|attr|exc|mod|obj):`|::\n")


def _arguments(func: griffe.Function) -> list[str]:
    """Parameters a caller passes (not self/cls, not private test seams, not *args)."""
    return [
        p.name
        for p in func.parameters
        if p.name not in ("self", "cls")
        and not p.name.startswith("_")
        and p.kind
        not in (griffe.ParameterKind.var_positional, griffe.ParameterKind.var_keyword)
    ]


def _documented_arguments(obj: griffe.Object) -> set[str] | None:
    """Names in the docstring's Args section(s); None when it has no such section."""
    if obj.docstring is None:
        return None
    sections = [
        section
        for section in obj.docstring.parse(griffe.Parser.google, warnings=False)
        if section.kind is griffe.DocstringSectionKind.parameters
    ]
    if not sections:
        return None
    return {parameter.name for section in sections for parameter in section.value}


def _check(
    path: str, obj: griffe.Object, problems: list[str], *, arguments: bool
) -> None:
    if not _has_docstring(obj):
        problems.append(f"no docstring: {path}")
        return
    assert obj.docstring is not None
    if RST.search(obj.docstring.value):
        problems.append(
            f"{path}: reStructuredText in the docstring (:class:`x`, '::'); write Markdown: "
            "[`x`][fluidcloud_async.x], a fenced ```python block"
        )
    if not arguments:
        return
    if obj.is_function:
        wanted = _arguments(obj)  # type: ignore[arg-type]
        have = _documented_arguments(obj) or set()
    elif (
        obj.is_class
        and "__init__" in obj.members
        and not obj.members["__init__"].is_alias
    ):
        wanted = _arguments(obj.members["__init__"])  # type: ignore[arg-type]
        found = _documented_arguments(obj)
        if (
            found is None
        ):  # a class users don't build, or a dataclass: its fields say it
            return
        have = found
    else:
        return
    for name in wanted:
        if name not in have:
            problems.append(
                f"{path}: parameter {name!r} is not in the docstring's Args"
            )


def docstring_problems(paths: list[str]) -> list[str]:
    """What the reference would lack: a public object (or a public method or property of a
    public class) without a docstring, a parameter missing from the Args section, or
    reStructuredText markup that Markdown would show raw."""
    loader = griffe.GriffeLoader(
        docstring_parser=griffe.Parser.google, search_paths=[str(ROOT)]
    )
    loader.load("fluidcloud_async")
    loader.resolve_aliases(implicit=False, external=False)
    package = loader.modules_collection["fluidcloud_async"]
    problems: list[str] = []
    for path in paths:
        obj = package[path.removeprefix("fluidcloud_async.")]
        target = obj.final_target if obj.is_alias else obj
        _check(path, target, problems, arguments=True)
        if target.is_class:
            for member in _public_members(target):
                _check(f"{path}.{member.name}", member, problems, arguments=True)
        if target.is_module:
            for member in target.members.values():
                if (
                    member.is_alias
                    or member.name.startswith("_")
                    or not member.is_function
                ):
                    continue
                # pytest fixtures: their parameters are other fixtures, not arguments.
                _check(f"{path}.{member.name}", member, problems, arguments=False)
    return problems


def on_pre_build(config: Any) -> None:
    _documented.clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    _documented.update(DIRECTIVE.findall(markdown))
    return INCLUDE.sub(lambda match: _include(match, page), markdown)


def on_env(env: Any, config: Any, files: Files) -> Any:
    """Runs once every page's markdown has been read, before any is rendered."""
    expected = expected_names()
    problems = [
        f"not in the API reference (no '::: {n}' on any page)"
        for n in expected
        if n not in _documented
    ]
    problems += docstring_problems(expected)
    # Logged, not raised, so that one build lists every problem; mkdocs.yml sets
    # strict: true, which turns any of them into a failed build.
    for problem in problems:
        log.error(problem)
    return env


# ----------------------------------------------------------------------------- includes

INCLUDE = re.compile(
    r'^<!-- include: (?P<path>\S+)(?: from "(?P<start>[^"]+)")?(?: shift (?P<shift>\d))? -->$',
    re.M,
)
PLOT = "benchmarks/results/throughput.png"
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def on_files(files: Files, config: Any) -> Files:
    plot = ROOT / PLOT
    if plot.exists():
        files.append(
            File.generated(config, "assets/throughput.png", abs_src_path=str(plot))
        )
    return files


def _include(match: re.Match[str], page: Any) -> str:
    """A repository file (from the line ``start`` on), without its title, its headings
    ``shift`` levels down."""
    source = ROOT / match["path"]
    where = f"{page.file.src_uri}: include of {match['path']}"
    if not source.is_file():
        log.error(f"{where}: no such file")
        return ""
    text = source.read_text(encoding="utf-8")
    if match["start"]:
        at = text.find(match["start"] + "\n")
        if at < 0:
            log.error(f"{where}: no line {match['start']!r} in it")
            return ""
        text = text[at:]
    if re.search(r"^\s*```\s*(python|py)\b", text, re.M):
        # Every Python block of the site runs in tests/docs; included ones would not.
        log.error(f"{where}: it has a Python block, which tests/docs would not run")
    text = re.sub(r"\A# [^\n]*\n", "", text)  # the page has its own title
    shift = int(match["shift"] or 0)
    text = re.sub(r"^(#{1,5}) ", lambda h: "#" * shift + h[0], text, flags=re.M)
    prefix = "../" * page.file.src_uri.count("/")

    def link(m: re.Match[str]) -> str:
        bang, label, target = m.groups()
        if re.match(r"^[a-z]+:|^#", target):
            return m.group(0)
        if target == PLOT:
            image = f"{prefix}assets/throughput.png"
            return f"[{bang}[{label}]({image})]({image})"  # click for the full size
        # A file of the repository that is not part of the site: name it, don't link it.
        return f"{label} (`{target}`)" if label != target else f"`{target}`"

    return _LINK.sub(link, text)
