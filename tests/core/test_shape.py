"""The code's shape: small modules, short functions, small classes, imports at the top.

Read with Python's own parser over bot/ and commands/. The limits are the project's conventions
(docs/architecture.md, "Conventions"): no module over 400 lines, no function over 60, no class over 20
methods, and an import inside a function only where a heavy import is deferred on purpose (listed here
with the reason).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.glob("bot/**/*.py"), *ROOT.glob("commands/*.py")])
MODULE_LINES, FUNCTION_LINES, CLASS_METHODS = 400, 60, 20

# (module, imported module): the deferred imports the project allows, and why
DEFERRED = {
    # matplotlib costs a second or more to import: only what draws a chart imports the chart modules
    ("bot/observe/charts.py", "io"),
    ("bot/observe/alert_card.py", "bot.observe.charts"),
    ("bot/observe/status.py", "bot.observe.charts"),
    ("bot/release/driven.py", "bot.observe.charts"),
    ("bot/release/audit.py", "bot.observe.charts"),
    ("bot/release/load_chart.py", "bot.observe.charts"),
    ("commands/stats.py", "bot.observe.delivery_chart"),
    # prometheus_api_client pulls pandas-sized dependencies: only a query imports it
    ("bot/observe/prom.py", "prometheus_api_client"),
}
# bot/__main__.py defers per sub-command (its docstring says why): the web server, Bolt, the Kubernetes
# client and the emulators are imported by the sub-command that needs them
CLI = "bot/__main__.py"


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _functions(tree: ast.AST):  # type: ignore[no-untyped-def]
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_the_sources_are_found() -> None:
    assert len(SOURCES) > 50 and any(_rel(p) == "bot/core/target.py" for p in SOURCES)


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_no_module_function_or_class_is_too_big(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    problems = []
    if len(text.splitlines()) > MODULE_LINES:
        problems.append(f"{len(text.splitlines())} lines (at most {MODULE_LINES})")
    for node in _functions(tree):
        length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
        if length > FUNCTION_LINES:
            problems.append(f"function {node.name} (line {node.lineno}): {length} lines (at most {FUNCTION_LINES})")
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            methods = sum(isinstance(b, ast.FunctionDef | ast.AsyncFunctionDef) for b in node.body)
            if methods > CLASS_METHODS:
                problems.append(f"class {node.name}: {methods} methods (at most {CLASS_METHODS})")
    assert not problems, f"{_rel(path)}: " + "; ".join(problems)


@pytest.mark.parametrize("path", [p for p in SOURCES if _rel(p) != CLI], ids=_rel)
def test_imports_are_at_the_top_unless_a_heavy_one_is_deferred(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    refused = []
    for function in _functions(tree):
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                names = [{alias.name} for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [{node.module or "", f"{node.module}.{alias.name}"} for alias in node.names]
            else:
                continue
            refused += [(sorted(n)[-1], node.lineno) for n in names if not any((_rel(path), m) in DEFERRED for m in n)]
    assert not refused, f"{_rel(path)}: imports inside functions: {sorted(set(refused))}"


def _services_attribute_assignments(tree: ast.AST) -> list[tuple[str, int]]:
    """``services.x = ...`` (also ``self.services.x``, ``ctx.services.x``, augmented, annotated, ``setattr``):
    the assembled bot filled in or changed after its construction."""
    def is_services(node: ast.expr) -> bool:
        return (isinstance(node, ast.Name) and node.id == "services") or (
            isinstance(node, ast.Attribute) and node.attr == "services")

    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            for target in node.targets:
                targets += target.elts if isinstance(target, ast.Tuple) else [target]
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
              and node.args and is_services(node.args[0])):
            found.append(("setattr", node.lineno))
        found += [(t.attr, t.lineno) for t in targets if isinstance(t, ast.Attribute) and is_services(t.value)]
    return found


def test_the_services_check_sees_an_assignment_after_construction() -> None:
    code = ("services = Services(shared=shared)\nservices.audit = Audit(services)\nself.services.home, x = h, 1\n"
            "ctx.services.releases += 1\nsetattr(services, 'holds', h)\nservices.audit.store = s\n")
    assert _services_attribute_assignments(ast.parse(code)) == [("audit", 2), ("home", 3), ("releases", 4),
                                                                ("setattr", 5)]


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_the_assembled_services_are_never_filled_in_after_construction(path: Path) -> None:
    """bot.wiring.build_services builds every part and then the Services holding them, in one expression."""
    assigned = _services_attribute_assignments(ast.parse(path.read_text(encoding="utf-8")))
    assert not assigned, f"{_rel(path)}: attributes of a Services object assigned: {assigned}"


PORTS = ROOT / "bot/core/ports.py"


def _any_attributes(tree: ast.AST) -> list[str]:
    """``Class.attribute`` of every attribute whose type names ``Any`` (``x: Any``, ``x: list[Any]``, a property
    returning it): a port's attribute is typed by another port or a type of the lowest layer."""
    def names_any(annotation: ast.expr | None) -> bool:
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):  # a quoted annotation
            annotation = ast.parse(annotation.value, mode="eval").body
        return annotation is not None and any(
            (isinstance(n, ast.Name) and n.id == "Any") or (isinstance(n, ast.Attribute) and n.attr == "Any")
            for n in ast.walk(annotation))

    found = []
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for node in cls.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and names_any(node.annotation):
                found.append(f"{cls.name}.{node.target.id}")
            elif (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and names_any(node.returns)
                  and any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)):
                found.append(f"{cls.name}.{node.name}")
    return found


def test_the_ports_check_sees_an_attribute_typed_any() -> None:
    code = ("class P(Protocol):\n    store: Any\n    clock: Callable[[], datetime]\n    rows: 'list[Any]'\n"
            "    entries: dict[str, typing.Any]\n    @property\n    def at(self) -> Any: ...\n"
            "    def load(self) -> Any: ...\n")
    assert _any_attributes(ast.parse(code)) == ["P.store", "P.rows", "P.entries", "P.at"]


def test_no_port_has_an_attribute_typed_any() -> None:
    """bot/core/ports.py: a part reaches another through a small Protocol, every attribute of it typed."""
    assert not _any_attributes(ast.parse(PORTS.read_text(encoding="utf-8")))


def _command_getattrs(tree: ast.AST) -> list[int]:
    """Lines of ``getattr(x, ...)`` where ``x`` is a command module, a command or a request (``module``,
    ``command.module``, ``request``, ``self.request``…): the dispatcher reads a command's typed description."""
    def is_command(node: ast.expr) -> bool:
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
        return any(word in name.lower() for word in ("module", "command", "request"))

    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and n.func.id == "getattr" and n.args and is_command(n.args[0])]


def test_the_command_check_sees_a_getattr_on_a_command() -> None:
    code = ("getattr(command.module, 'FORM', False)\ngetattr(module, 'TARGETED')\ngetattr(respond, 'response_url')\n"
            "getattr(self.request, 'mutating', False)\ngetattr(answer, 'status_code', 200)\n")
    assert _command_getattrs(ast.parse(code)) == [1, 2, 4]


@pytest.mark.parametrize("path", sorted(ROOT.glob("bot/chat/**/*.py")), ids=_rel)
def test_the_chat_layer_reads_no_command_module_with_getattr(path: Path) -> None:
    """A command is one typed :class:`bot.chat.contract.Command` that its module exports (``COMMAND``)."""
    assert not _command_getattrs(ast.parse(path.read_text(encoding="utf-8"))), f"{_rel(path)}: getattr on a command"
