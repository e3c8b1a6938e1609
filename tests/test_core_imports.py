"""The core package runs without the web: no core module imports captioner.web or a web framework
(Gradio, Starlette, FastAPI), so the model, the API, training and the command line load without
them. Only captioner/web/ (and app.py) may."""
import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "captioner"
WEB = PACKAGE / "web"
FRAMEWORKS = ("gradio", "gradio_client", "starlette", "fastapi")
# The modules the brief names; every other core module is imported too.
NAMED = ["captioner.model", "captioner.decoding", "captioner.api", "captioner.train", "captioner.data",
         "captioner.checkpoint", "captioner.encoders", "captioner.litert", "captioner.images",
         "captioner.sandbox", "captioner.options", "captioner.config", "captioner.vocab",
         "captioner.evaluate", "captioner.bench", "captioner.__main__"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_modules() -> dict[str, Path]:
    """Every module of the package outside captioner/web/."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py")) if WEB not in path.parents}


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included), absolute."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found |= {target} | {f"{target}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def is_web(module: str) -> bool:
    return module == "captioner.web" or module.startswith("captioner.web.") or \
        module.split(".")[0] in FRAMEWORKS


def test_no_core_module_imports_the_web_at_any_depth():
    core = core_modules()
    graph = {name: imports(path) for name, path in core.items()}
    reaches = []
    for start in graph:                    # through other core modules too (bench -> a page module)
        seen, todo = {start}, [(start, [start])]
        while todo:
            name, path = todo.pop()
            for target in sorted(graph[name]):
                if is_web(target):
                    reaches.append(" -> ".join(path + [target]))
                elif target in graph and target not in seen:
                    seen.add(target)
                    todo.append((target, path + [target]))
    assert not reaches, reaches


def test_the_core_loads_without_gradio_starlette_or_fastapi():
    modules = sorted(set(NAMED) | set(core_modules()))
    assert set(NAMED) <= set(core_modules())
    script = (f"import importlib, json, sys\n"
              f"for name in {modules!r}:\n"
              f"    importlib.import_module(name)\n"
              f"importlib.import_module('captioner.__main__').build_parser()\n"
              f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r} "
              f"or m.startswith('captioner.web'))))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
