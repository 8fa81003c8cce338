"""The import rule, read from the source with `ast` (nothing is imported): a module imports only from its own layer
or the layers below it, and no face (API, dashboard, command line) imports the orchestrator (`pipeline`). Every
module of the package must have a layer here, so a new one is placed on purpose. README's Layout section shows
the same layers."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "churn_nb"

# lowest first; a module may import from its own layer and every layer before it
LAYERS = {
    "foundation": {"config", "data", "features", "evaluate"},
    "model": {"tracking", "baselines", "trees", "automl", "train", "explain", "registry"},
    "decide": {"segment", "recommend"},
    "run": {"store", "pipeline"},
    "faces": {"serve", "dashboard"},
    "bench": {"bench", "bench_api", "bench_dashboard", "bench_tables"},
    "command": {"cli"},
}
ORCHESTRATOR = "pipeline"
FACES = LAYERS["faces"] | LAYERS["command"]


def rank(module: str) -> int:
    "The position of `module`'s layer, lowest first."
    return next(i for i, members in enumerate(LAYERS.values()) if module in members)


def package_modules() -> list:
    "The package's own modules (not nbdev's `_modidx`)."
    return sorted(f.stem for f in PACKAGE.glob("*.py") if not f.name.startswith("_"))


def churn_nb_imports(source: str) -> set:
    "(line, module) of every churn_nb module that `source` imports, at the top or inside a function."
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {(node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("churn_nb.")}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1 or module == "churn_nb":  # `from . import x`, `from churn_nb import x`
                inner = module if node.level == 1 and module else None
                found |= {(node.lineno, inner or a.name) for a in node.names}
            elif module.startswith("churn_nb."):
                found.add((node.lineno, module.split(".")[1]))
    return found


def import_problems(module: str, source: str) -> list:
    "What breaks the rule in `module`'s `source`, in words."
    problems = []
    for line, imported in sorted(churn_nb_imports(source)):
        if imported == module or imported not in set().union(*LAYERS.values()):
            continue
        if rank(imported) > rank(module):
            problems.append(f"churn_nb/{module}.py:{line} imports {imported} from a higher layer")
        if module in FACES and imported == ORCHESTRATOR:
            problems.append(f"churn_nb/{module}.py:{line} (a face) imports the orchestrator {ORCHESTRATOR}")
    return problems


def test_every_module_has_a_layer():
    placed = set().union(*LAYERS.values())
    assert [m for m in package_modules() if m not in placed] == [], (
        "give the new module a layer in tests/test_layers.py"
    )
    assert sorted(placed - set(package_modules())) == [], "a layer names a module that is gone"


def test_no_module_imports_upwards_and_no_face_imports_the_orchestrator():
    problems = [p for m in package_modules() for p in import_problems(m, (PACKAGE / f"{m}.py").read_text())]
    assert problems == []


def test_the_rule_catches_what_it_should():
    assert import_problems("data", "from churn_nb.pipeline import score") == [
        "churn_nb/data.py:1 imports pipeline from a higher layer"
    ]
    assert import_problems("serve", "def f():\n    from churn_nb import pipeline") == [
        "churn_nb/serve.py:2 (a face) imports the orchestrator pipeline"
    ]
    assert import_problems("store", "from .registry import CHAMPION_URI\nimport churn_nb.config") == []
    assert import_problems("tracking", "import churn_nb.recommend") == [
        "churn_nb/tracking.py:1 imports recommend from a higher layer"
    ]
