"""Dependencies point inward: the domain imports no infrastructure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import eid_service.domain

DOMAIN = Path(eid_service.domain.__file__).parent
FORBIDDEN = (
    "grpc",
    "google",
    "sqlalchemy",
    "alembic",
    "eid.",
    "eid_client",
    "cryptography",
    "argon2",
    "eid_service.store",
    "eid_service.api",
    "eid_service.security",
    "eid_service.use_cases",
    "eid_service.notify",
    "eid_service.app",
)


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.name)
def test_domain_module_imports_no_infrastructure(path: Path) -> None:
    bad = [n for n in _imports(path) if n == "eid" or n.startswith(FORBIDDEN)]
    assert bad == []


def test_the_check_sees_the_domain() -> None:
    assert len(list(DOMAIN.glob("*.py"))) >= 8
