"""MkDocs hooks of the documentation site (wired in mkdocs.yml).

1. The reference must be complete. After the pages are read, every name in
   ``fluidcloud_async.__all__``, ``fluidcloud_async.emulator.__all__``, the resource
   namespaces (``fc.files`` ...) and the pytest plugin's fixtures must have a ``::: path``
   directive on some page, and each of them (and every public method or property of a
   public class) needs a docstring. Anything missing fails the build, listed by name.
2. ``<!-- include: PATH [from "HEADING"] -->`` embeds a repository file at build time, so
   the page and the file cannot drift: the Benchmarks page embeds BENCHMARKS.md (written by
   ``nox -s bench``, whose plot is copied into the site), the emulator guide the emulator's
   own notes.
"""

from __future__ import annotations

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
    names += [f"fluidcloud_async.resources.{n}" for n in fluidcloud_async.resources.__all__]
    names += [f"fluidcloud_async.emulator.{n}" for n in fluidcloud_async.emulator.__all__]
    names += ["fluidcloud_async.pytest_plugin"]
    return names


def _public_members(obj: griffe.Object | griffe.Alias) -> list[griffe.Object | griffe.Alias]:
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


def missing_docstrings(paths: list[str]) -> list[str]:
    """Public objects (and public methods of public classes) without a docstring."""
    loader = griffe.GriffeLoader(docstring_parser=griffe.Parser.google, search_paths=[str(ROOT)])
    loader.load("fluidcloud_async")
    loader.resolve_aliases(implicit=False, external=False)
    package = loader.modules_collection["fluidcloud_async"]
    missing = []
    for path in paths:
        obj = package[path.removeprefix("fluidcloud_async.")]
        target = obj.final_target if obj.is_alias else obj
        if not _has_docstring(target):
            missing.append(path)
        if target.is_class:
            for member in _public_members(target):
                if not _has_docstring(member):
                    missing.append(f"{path}.{member.name}")
        if target.is_module:
            for member in target.members.values():
                if member.is_alias or member.name.startswith("_") or not member.is_function:
                    continue
                if not _has_docstring(member):
                    missing.append(f"{path}.{member.name}")
    return missing


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
    problems += [f"no docstring: {n}" for n in missing_docstrings(expected)]
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
        files.append(File.generated(config, "assets/throughput.png", abs_src_path=str(plot)))
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
