"""Security rules that hold for the whole code base, checked on its source: nothing in the data dir is
ever unpickled or loaded unsafely, and no SQL is built from strings."""

from __future__ import annotations

import ast

from forecasting.settings import PROJECT_ROOT

SOURCES = sorted(p for folder in ("forecasting", "stores", "tasks", "flows") for p in (PROJECT_ROOT / folder).rglob("*.py"))
UNSAFE_MODULES = {"pickle", "cPickle", "joblib", "dill", "cloudpickle", "marshal", "shelve"}


def imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def name_of(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def test_sources_are_found():
    assert len(SOURCES) > 20 and any(p.name == "registry.py" for p in SOURCES)


def test_no_deserialiser_that_runs_code_is_imported():
    for path in SOURCES:
        assert not imported_modules(ast.parse(path.read_text())) & UNSAFE_MODULES, path


def test_every_model_load_is_in_safe_mode():
    loads = [(path, call) for path in SOURCES for call in calls(ast.parse(path.read_text()))
             if name_of(call) == "load_model"]
    assert loads, "the registry loads models somewhere"
    for path, call in loads:
        safe = {k.arg: k.value for k in call.keywords}.get("safe_mode")
        assert isinstance(safe, ast.Constant) and safe.value is True, f"{path}: load_model without safe_mode=True"


def test_no_sql_text_is_built_from_strings():
    """SQL goes through SQLAlchemy Core expressions; `text()` and raw `execute("...")` are not used."""
    for path in SOURCES:
        for call in calls(ast.parse(path.read_text())):
            assert name_of(call) != "text" or not isinstance(call.func, ast.Attribute) or \
                getattr(call.func.value, "id", "") not in ("sa", "sqlalchemy"), f"{path}: sqlalchemy.text()"
            if name_of(call) in ("execute", "exec_driver_sql") and call.args:
                assert not isinstance(call.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)), \
                    f"{path}:{call.lineno}: SQL passed as a string"
