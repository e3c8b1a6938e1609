"""The package's shape, as the style guide asks: short functions, no import cycles."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "captioner"
SOURCES = sorted(PACKAGE.rglob("*.py")) + sorted((PACKAGE.parent / "scripts").glob("*.py")) + [PACKAGE.parent / "app.py"]


def test_no_function_is_longer_than_fifty_lines():
    long = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 50:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def module_imports() -> dict[str, set[str]]:
    """captioner module -> the captioner modules it imports (at any depth in the file)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")
                base = base[:len(base) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                found |= {target} | {f"{target}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
        graph[name] = found
    return {name: {t for t in targets if t in graph and t != name} for name, targets in graph.items()}


def test_no_import_cycles():
    graph = module_imports()
    cycles = []

    def visit(node, path):
        for target in graph[node]:
            if target in path:
                cycles.append(path[path.index(target):] + [target])
            elif len(path) < 12:
                visit(target, path + [target])
    for start in graph:
        visit(start, [start])
    # A package's __init__ importing its own modules is not a cycle of modules.
    cycles = [c for c in cycles if not any(a.startswith(b + ".") or b.startswith(a + ".")
                                           for a, b in zip(c, c[1:]))]
    assert not cycles, cycles[:3]
