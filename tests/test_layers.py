"""The import rule, read from the source with `ast` (nothing is imported): a module imports only from its own layer
or the layers below it, and no face (API, dashboard, command line) imports the orchestrator (`run.pipeline`). The
layers are the subpackages (plus the foundation modules and the command at the top), so a new module is placed by
the folder it goes in. README's Layout section shows the same layers."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "churn_nb"

# lowest first; a module may import from its own layer and every layer before it
LAYERS = ["foundation", "text", "model", "decide", "run", "monitor", "faces", "bench", "command"]
FOUNDATION = {"config", "data"}
COMMAND = {"cli"}
ORCHESTRATOR = "run.pipeline"
FACES = {"faces", "command"}


def layer(module: str) -> str:
    "The layer of `module` (dotted, relative to churn_nb): its subpackage, or foundation / command at the top."
    top = module.split(".")[0]
    if "." in module:
        return top
    return "foundation" if top in FOUNDATION else "command" if top in COMMAND else "unplaced"


def package_modules() -> list:
    "The package's own modules, dotted relative to churn_nb (not nbdev's `_modidx` or the `__init__`s)."
    files = [f.relative_to(PACKAGE) for f in PACKAGE.rglob("*.py") if not f.name.startswith("_")]
    return sorted(".".join(f.with_suffix("").parts) for f in files)


def resolve(module: str, node: ast.ImportFrom) -> str:
    "The dotted target of a `from … import` inside `module` (relative imports resolved), relative to churn_nb."
    if node.level == 0:
        return (node.module or "").removeprefix("churn_nb").lstrip(".")
    base = module.split(".")[: -node.level]
    return ".".join(base + ([node.module] if node.module else []))


def churn_nb_imports(module: str, source: str) -> set:
    "(line, module) of every churn_nb module that `source` imports, at the top or inside a function."
    known = set(package_modules())
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {
                (node.lineno, a.name.removeprefix("churn_nb.")) for a in node.names if a.name.startswith("churn_nb.")
            }
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == "churn_nb"):
            target = resolve(module, node)
            for a in node.names:
                child = f"{target}.{a.name}".lstrip(".")
                found.add((node.lineno, child if child in known else target))
    return {(line, m) for line, m in found if m in known}


def import_problems(module: str, source: str) -> list:
    "What breaks the rule in `module`'s `source`, in words."
    problems = []
    path = f"churn_nb/{module.replace('.', '/')}.py"
    for line, imported in sorted(churn_nb_imports(module, source)):
        if LAYERS.index(layer(imported)) > LAYERS.index(layer(module)):
            problems.append(f"{path}:{line} imports {imported} from a higher layer")
        if layer(module) in FACES and imported == ORCHESTRATOR:
            problems.append(f"{path}:{line} (a face) imports the orchestrator {ORCHESTRATOR}")
    return problems


def test_every_module_has_a_layer():
    assert [m for m in package_modules() if layer(m) not in LAYERS] == [], (
        "put the new module in a subpackage, or name it in FOUNDATION / COMMAND in tests/test_layers.py"
    )
    assert "model.features" in package_modules() and "cli" in package_modules()


def test_no_module_imports_upwards_and_no_face_imports_the_orchestrator():
    sources = {m: (PACKAGE / f"{m.replace('.', '/')}.py").read_text() for m in package_modules()}
    problems = [p for m, source in sources.items() for p in import_problems(m, source)]
    assert problems == []


def test_the_rule_catches_what_it_should():
    assert import_problems("data", "from churn_nb.run.pipeline import score") == [
        "churn_nb/data.py:1 imports run.pipeline from a higher layer"
    ]
    assert import_problems("faces.serve", "def f():\n    from churn_nb.run import pipeline") == [
        "churn_nb/faces/serve.py:2 (a face) imports the orchestrator run.pipeline"
    ]
    assert import_problems("faces.serve", "from ..run.pipeline import score") == [
        "churn_nb/faces/serve.py:1 (a face) imports the orchestrator run.pipeline"
    ]
    assert import_problems("run.store", "from ..model.registry import CHAMPION_URI\nimport churn_nb.config") == []
    assert import_problems("model.tracking", "import churn_nb.decide.recommend") == [
        "churn_nb/model/tracking.py:1 imports decide.recommend from a higher layer"
    ]
    assert import_problems("model.tracking", "from .. import config\nfrom ..decide import segment") == [
        "churn_nb/model/tracking.py:2 imports decide.segment from a higher layer"
    ]


def notebook_of(module: str) -> str:
    "The notebook `module` is exported from (nbdev's `# %% ../notebooks/…` cell markers), relative to notebooks/."
    source = (PACKAGE / f"{module.replace('.', '/')}.py").read_text()
    marker = next(line for line in source.splitlines() if line.startswith("# %% ") and "notebooks/" in line)
    return marker.split("notebooks/")[1].split(".ipynb")[0]


def test_notebooks_come_in_dependency_order():
    "A module's notebook comes after the notebooks of every module it imports at its top, so they read in order."
    late = []
    for module in package_modules():
        source = (PACKAGE / f"{module.replace('.', '/')}.py").read_text()
        top = ast.Module([n for n in ast.parse(source).body if isinstance(n, ast.Import | ast.ImportFrom)], [])
        for line, imported in sorted(churn_nb_imports(module, ast.unparse(top))):
            if notebook_of(imported) > notebook_of(module):
                late.append(
                    f"{notebook_of(module)} imports {imported}, whose notebook {notebook_of(imported)} comes later"
                )
    assert late == []
    assert notebook_of("model.features") == "02_model/01_features"
