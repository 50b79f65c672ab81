"""The README stays true: its test command is CI's, and it documents every configuration key."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from casty.config import CastyConfig

ROOT = Path(__file__).resolve().parent.parent.parent


def _keys(obj: Any, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            keys.extend(_keys(value, f"{prefix}{f.name}."))
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def test_readme_documents_every_config_key() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [k for k in _keys(CastyConfig()) if f"`{k.rsplit('.', 1)[-1]}`" not in readme]
    assert not missing, missing
    for section in ("[system]", "[defaults.mailbox]", "[cluster.failure_detector]", "[streams]"):
        assert f"`{section}`" in readme


def test_readme_config_reference_is_current() -> None:
    from casty.config import config_reference

    readme = (ROOT / "README.md").read_text()
    assert config_reference().strip() in readme, "run: python -m casty.config README.md"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in ci.splitlines()[-1]


def test_reliability_report_names_only_existing_tests() -> None:
    import re

    doc = (ROOT / "docs" / "reliability.md").read_text()
    sources = "".join(p.read_text() for p in (ROOT / "tests").glob("*/test_*.py"))
    files = {p.stem for p in (ROOT / "tests").glob("*/test_*.py")}
    named = set(re.findall(r"(test_[a-z0-9_]+)", doc)) - files
    missing = sorted(n for n in named if f"def {n}(" not in sources)
    assert not missing, missing
