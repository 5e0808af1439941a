"""The core's import rules, as its package docstrings state them."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "ctaoflow"
MAY_NOT_IMPORT = {  # package -> ctaoflow packages it must not import
    "spec": {"engine", "ops", "catalog", "backends", "demo", "cli", "sites", "monitoring"},
    "engine": {"ops", "demo", "cli", "monitoring"},
    "ops": {"demo", "cli", "monitoring"},
    "catalog": {"engine", "ops", "backends", "demo", "cli", "monitoring"},
    "backends": {"engine", "ops", "spec", "catalog", "demo", "cli", "monitoring"},
    "monitoring": {"ops", "demo", "cli"},
}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_wings_import_one_way_and_never_airflow() -> None:
    broken = []
    for package, forbidden in MAY_NOT_IMPORT.items():
        for path in sorted((CORE / package).rglob("*.py")):
            for module in imports(path):
                top = module.split(".")
                if top[0] in ("airflow", "operators") or (
                        top[0] == "ctaoflow" and len(top) > 1 and top[1] in forbidden):
                    broken.append(f"{path.relative_to(CORE)} imports {module}")
    assert broken == []


def test_every_core_package_says_what_it_holds_and_may_import() -> None:
    for package in MAY_NOT_IMPORT:
        doc = ast.get_docstring(ast.parse((CORE / package / "__init__.py").read_text()))
        assert doc and ("May import" in doc), package


def test_the_readme_names_jobs_as_the_code_does() -> None:
    from ctaoflow.engine.jobs import job_name
    from ctaoflow.spec.model import Production

    readme = (CORE.parent / "README.md").read_text()
    documented = "<production>-<uid>.<transformation>.<task:06d>.<attempt>"
    assert f"(`{documented}`" in readme
    production = Production.model_validate({
        "production": "prod", "transformations": [{
            "name": "t", "input": {"query": {"a": 1}}, "job": {"command": ["true"]},
            "outputs": [{"name": "{task}"}]}]})
    expected = (documented.replace("<production>", "prod").replace("<uid>", "u1")
                .replace("<transformation>", "t").replace("<task:06d>", "000042")
                .replace("<attempt>", "3"))
    assert job_name(production, "u1", production.transformations[0], 42, 3) == expected
