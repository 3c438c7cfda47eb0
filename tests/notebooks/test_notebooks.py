"""The numbered notebooks: stored without outputs, thin (import ppx, a parameters cell),
and executed top to bottom with tiny parameters (marker ``notebooks``).

Execution uses nbclient: the test inserts a cell after the one tagged ``parameters`` that
shrinks the world, runs the notebook in a fresh kernel (which inherits the session's
isolated PPX_* folders, so models trained in 02-05 are the champions 07 explains), then
reads the notebook's ``results`` dict back and asserts on it.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = [
    "01_world_and_data",
    "02_delivery",
    "03_churn",
    "04_fraud",
    "05_recs",
    "06_policy_simulation",
    "07_explanations",
]
#: The injected parameters: a world big enough for every split to hold both classes, one
#: or two epochs, a few explained rows. Most of a notebook's time is fixed cost (a kernel,
#: imports, shap's JIT), so these keep the seven executions to a few minutes.
TINY = "CUSTOMERS = 500\nMONTHS = 13\nSEED = 11\nEXPLAIN_ROWS = 24\n"
EXTRA = {
    "02_delivery": "EPOCHS = 1\nTRIALS = 0\n",
    "03_churn": "MAX_EPOCHS = 2\nTRIALS = 0\n",
    "04_fraud": "MAX_EPOCHS = 2\n",
    "05_recs": "EPOCHS = 1\nMAX_MINUTES = 0.2\nREPEAT_EPOCHS = 10\n",
    "06_policy_simulation": "SAMPLE = 0.5\n",
}


#: ``from ppx.x import a, b`` in a code cell (one line, or parenthesised over several)
PPX_IMPORT = re.compile(r"^from (ppx[\w.]*) import (?:\(([^)]*)\)|(.+))$", re.MULTILINE)


def _read(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs_and_is_thin(name):
    nb = _read(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    stored = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not stored, f"{name}: code cells {stored} have stored outputs; strip them before commit"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: needs exactly one cell tagged 'parameters'"
    assert any("import ppx" in c.source for c in code), f"{name}: must import ppx"
    assert not any(c.source.lstrip().startswith(("def ", "class ")) for c in code), (
        f"{name}: functions and classes belong in src/, not in the notebook"
    )


@pytest.mark.parametrize("name", NAMES)
def test_notebook_imports_exist(name):
    """A renamed or moved ppx module fails here, in the fast suite, naming the cell."""
    found = 0
    for cell in (c for c in _read(name).cells if c.cell_type == "code"):
        for module, wrapped, names in PPX_IMPORT.findall(cell.source):
            mod = importlib.import_module(module)
            for attr in (n.strip() for n in (wrapped or names).replace("\n", ",").split(",")):
                if attr:
                    found += 1
                    if not hasattr(mod, attr):  # a submodule: ``from ppx import tracking``
                        importlib.import_module(f"{module}.{attr}")
    assert found, f"{name}: no `from ppx... import ...` found; the check would be vacuous"


#: Notebooks executed in this test session (07 explains the models that 02-05 register).
_EXECUTED: set[str] = set()
#: The notebooks whose registered models 07 explains.
TRAINS = ("02_delivery", "03_churn", "04_fraud", "05_recs")


def _execute(name: str, tmp_path: Path) -> dict:
    from nbclient import NotebookClient

    nb = _read(name)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(TINY + EXTRA.get(name, "")))
    nb.cells.append(
        nbformat.v4.new_code_cell("import json; print(json.dumps(results, default=str))")
    )
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    _EXECUTED.add(name)
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    return json.loads(out)


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_with_tiny_parameters(name, tmp_path, monkeypatch):
    # MLflow writes the URI it was last pointed at into the environment; a kernel would
    # inherit an earlier test's store. Without it every kernel uses the session's store.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    if name == "07_explanations":
        # In file order 02-05 have run already; alone (-k, a re-run of the failures, another
        # order) 07 runs them first, so it never depends on which tests ran before it.
        for before in TRAINS:
            if before not in _EXECUTED:
                (tmp_path / before).mkdir()
                _execute(before, tmp_path / before)
    results = _execute(name, tmp_path)
    if name == "01_world_and_data":
        assert results["rows_orders"] > 0
        assert 0 < results["late_delivery_rate"] < 1
    elif name in ("02_delivery", "03_churn", "04_fraud", "05_recs"):
        assert Path(results["report"]).exists()
        assert results["n_summary"] >= 3
        if name == "02_delivery":
            assert results["mae_days"] > 0
        if name == "05_recs":
            assert 0 <= results["ndcg_10"] <= 1
    elif name == "06_policy_simulation":
        assert results["policies"] == ["default", "retention_push"]
        assert results["metrics"] > 0
    else:
        from ppx.models import registry

        # 02-05 registered every model: each is explained, its champion or, when the gate
        # kept every version out, its newest version.
        assert set(results["reports"]) == set(registry.explainable())
        assert set(results["codes"]) == set(registry.explainable())
        assert all(n == 3 for n in results["codes"].values())
