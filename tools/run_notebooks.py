"""Execute the library notebooks and keep their outputs, so the notebooks read as a manual without running anything.

`make docs` runs this: each notebook runs as `nbdev_test` runs it (slow cells included, `bench` cells skipped) and its
outputs are written back into it; a failing notebook is left as it was and named at the end. Outputs that only a live
kernel can show (widget views) keep their text form; outputs larger than `MAX_OUTPUT` are replaced by a note."""

import json, os, sys, time
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from nbdev.frontmatter import FrontmatterProc
from nbdev.process import NBProcessor

ROOT = Path(__file__).resolve().parents[1]
SKIP_FLAGS = {"bench"}
MAX_OUTPUT = 400_000  # bytes of one cell's outputs (a chart is ~30-60 kB)
WIDGET = "application/vnd.jupyter.widget-view+json"


def skipped(cell) -> bool:
    "Whether `nbdev_test --flags slow` would skip `cell` (markdown, the export call, `bench` cells, eval: false)."
    if cell.cell_type != "code" or "nbdev_export" + "(" in cell.source:
        return True
    directives = getattr(cell, "directives_", {}) or {}
    if directives.get("eval:", [""])[0].lower() == "false":
        return True
    return bool(SKIP_FLAGS & directives.keys())


def kept(outputs: list) -> list:
    "`outputs` without widget views (their text form stays) and without oversized ones."
    out = []
    for o in outputs:
        data = o.get("data")
        if data and WIDGET in data:
            data = {k: v for k, v in data.items() if k != WIDGET}
            if not data:
                continue
            o = {**o, "data": data}
        out.append(o)
    if len(json.dumps(out)) > MAX_OUTPUT:
        return [
            {
                "output_type": "stream",
                "name": "stdout",
                "text": "(output too large to keep in the notebook: run the cell to see it)\n",
            }
        ]
    return out


def run_notebook(path: Path) -> float:
    "Execute notebook `path` and write its outputs into it; the seconds it took (raises on a failing cell)."
    t0 = time.perf_counter()
    processed = NBProcessor(path, procs=FrontmatterProc, process=True).nb
    shell = CaptureShell(path)
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        shell.run_all(processed, exc_stop=True, preproc=skipped)
    finally:
        os.chdir(cwd)
    outputs = {c.id: c.get("outputs", []) for c in processed.cells if c.cell_type == "code"}
    nb = read_nb(path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell["outputs"] = kept(outputs.get(cell.id, []))
    write_nb(nb, path)
    return time.perf_counter() - t0


def run_one(path: Path) -> tuple:
    "(name, seconds or None, error) of running notebook `path` in this process."
    try:
        return str(path.relative_to(ROOT / "notebooks")), run_notebook(path), ""
    except Exception as e:
        return str(path.relative_to(ROOT / "notebooks")), None, f"{type(e).__name__}: {str(e)[:300]}"


if __name__ == "__main__":
    import multiprocessing

    paths = [Path(p).resolve() for p in sys.argv[1:]] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")) + sorted(
        (ROOT / "notebooks").glob("[0-9]*/*.ipynb")
    ) + [ROOT / "notebooks" / "index.ipynb"]
    failed = []
    with multiprocessing.get_context("fork").Pool(
        2, maxtasksperchild=1
    ) as pool:  # a fresh process per notebook, two at a time
        for name, seconds, error in pool.imap_unordered(run_one, paths):
            print(
                f"{name}: {seconds:.0f} s" if error == "" else f"{name}: FAILED ({error}); left as it was", flush=True
            )
            if error:
                failed.append(name)
    if failed:
        sys.exit(f"make docs: {len(failed)} notebook(s) failed: {', '.join(failed)}")
