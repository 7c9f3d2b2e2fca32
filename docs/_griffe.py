"""A griffe extension (loaded by mkdocstrings, see mkdocs.yml) that makes the reference read
as the user sees the API, without changing the code:

- a default that names a module constant (``timeout=DEFAULT_TIMEOUT``) shows its value;
- the models' ``Timestamp`` (an annotated ``datetime`` made timezone-aware) shows as
  ``datetime``;
- private base classes (``_Model``, the resources' ``Resource``) are not listed as bases;
- classes the SDK builds for you (a client's ``fc.files``, what ``list`` and
  ``upload_many`` return) and the exceptions show no constructor: its parameters are not
  yours to pass; an exception's undocumented instance attributes (``self.x = x``) are
  left out too, its ``Attributes:`` section says what they are;
- an instance attribute set in ``__init__`` shows no value (``base_url = ''`` is how it
  starts, not what you read), and is left out without a docstring (an internal one).
"""

from __future__ import annotations

from typing import Any

import griffe

HIDDEN_BASES = {"Resource"}
BUILT_FOR_YOU = {
    "fluidcloud_async._pagination.AsyncPaginator",
    "fluidcloud_async._transfer._bulk.UploadMany",
    "fluidcloud_async._transfer._bulk.Results",
    "fluidcloud_async._transfer._journal.UploadJournal",
    "fluidcloud_async.resources._base.Resource",
}


class ReaderFacingSignatures(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name == "fluidcloud_async":
            self._walk(pkg, set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        for member in list(obj.members.values()):
            if member.is_alias:
                continue
            if member.is_function:
                self._function(member)  # type: ignore[arg-type]
            elif member.is_attribute and "Timestamp" in str(member.annotation or ""):
                member.annotation = str(member.annotation).replace(
                    "Timestamp", "datetime"
                )
            elif member.is_class:
                self._class(member)  # type: ignore[arg-type]
            if member.is_module or member.is_class:
                self._walk(member, seen)  # type: ignore[arg-type]

    def _function(self, func: griffe.Function) -> None:
        for parameter in list(func.parameters):
            default = parameter.default
            if isinstance(default, griffe.ExprName) and default.name.isupper():
                value = _constant(func, default.name)
                if value is not None:
                    parameter.default = value

    def _class(self, cls: griffe.Class) -> None:
        def shown(base: Any) -> bool:
            name = str(base).rsplit(".", 1)[-1]
            return not name.startswith("_") and name not in HIDDEN_BASES

        built_for_you = cls.path in BUILT_FOR_YOU or any(
            str(base.canonical_path if hasattr(base, "canonical_path") else base)
            in BUILT_FOR_YOU
            for base in cls.bases
        )
        cls.bases = [base for base in cls.bases if shown(base)]
        exception = cls.module.path == "fluidcloud_async._exceptions"
        if (built_for_you or exception) and "__init__" in cls.members:
            del cls.members["__init__"]
        for name, member in list(cls.members.items()):
            if member.is_alias or not member.is_attribute:
                continue
            set_in_init = "instance-attribute" in member.labels and (
                "class-attribute" not in member.labels
            )
            if (exception or set_in_init) and not member.docstring:
                del cls.members[name]
            elif set_in_init:
                member.value = None


def _constant(func: griffe.Function, name: str) -> str | None:
    module = func.module
    try:
        member = module.members[name]
        target = member.final_target if member.is_alias else member
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    value = getattr(target, "value", None)
    return None if value is None else str(value)
