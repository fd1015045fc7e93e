"""The domain stays pure: no web framework, ORM, AMI client or event loop under hotline/domain."""

from __future__ import annotations

import ast
from pathlib import Path

import hotline.domain

FORBIDDEN = {"fastapi", "starlette", "sqlalchemy", "panoramisk", "asyncio", "alembic", "httpx", "uvicorn"}
FORBIDDEN_HOTLINE = {"hotline.api", "hotline.db", "hotline.ami", "hotline.services", "hotline.bootstrap"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(path: Path) -> list[str]:
    bad = []
    for name in _imports(path):
        top = name.split(".")[0]
        if top in FORBIDDEN or any(name == p or name.startswith(p + ".") for p in FORBIDDEN_HOTLINE):
            bad.append(name)
    return bad


def test_domain_imports_only_the_standard_library_and_itself() -> None:
    package = Path(hotline.domain.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert files, "the domain package has modules"
    problems = {str(f.relative_to(package)): v for f in files if (v := _violations(f))}
    assert problems == {}


def test_the_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text(
        "import asyncio\nfrom sqlalchemy.orm import Session\nfrom hotline.db.models import Call\n"
    )
    assert sorted(_violations(sample)) == ["asyncio", "hotline.db.models", "sqlalchemy.orm"]
