"""Automation: `nox -s tests` is the one command CI and the README run."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests", "docs"]

PYTHON = None  # the interpreter nox runs under


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The full test suite (unit, end-to-end against the emulator, S3 via moto, CLI, examples)."""
    session.install("-e", ".[test,s3,cli,redis,dask]")
    session.run("pytest", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff>=0.5")
    paths = ("fluidcloud_async", "tests", "benchmarks", "examples", "docs", "noxfile.py")
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)  # docs/: its hooks and the page blocks


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict", "fluidcloud_async")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site into site/ (mkdocs --strict; fails on a broken link, a missing
    reference or an undocumented public name: see docs/_hooks.py)."""
    session.install("-e", ".[docs,cli]")
    quiet = {"NO_MKDOCS_2_WARNING": "1"}  # Material's banner about its successor
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs, env=quiet)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Run the main job on the embedded emulator (pass --small for a quick run)."""
    session.install("-e", ".[cli]")
    session.run("python", "-m", "fluidcloud_async.demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmark suite; results land in benchmarks/results/ and BENCHMARKS.md.

    The TLS group needs nginx: installed here when missing (Debian/Ubuntu, as root)."""
    session.install("-e", ".[test,s3,redis,dask]", "httpx", "matplotlib", "py-spy", "trustme")
    if not any(map(shutil.which, ("nginx", "/usr/sbin/nginx"))):
        if os.geteuid() == 0 and shutil.which("apt-get"):
            env = {"DEBIAN_FRONTEND": "noninteractive"}
            session.run("apt-get", "update", "-qq", external=True, env=env)
            install = "apt-get install -y -qq nginx-light || apt-get install -y -qq nginx"
            session.run("sh", "-c", install, external=True, env=env)
        else:
            session.warn("nginx is not installed (and no root apt-get): the tls group skips")
    session.run("python", "-m", "benchmarks.run", *session.posargs)


@nox.session(python=PYTHON)
def audit(session: nox.Session) -> None:
    """Known-vulnerability audit of the dependency set (needs the package index)."""
    session.install("-e", ".[s3,cli]", "pip-audit")
    session.run("pip-audit", "--skip-editable")
