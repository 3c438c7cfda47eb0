"""The deployable bundle: built from ``serving/bentofile.yaml``, it starts and scores.

The build runs as a user would (``pip wheel`` of ppx, then ``bentoml build -f
serving/bentofile.yaml .``) on a copy of the project, into a temporary BentoML home,
offline. The service then starts from the built bento, with the ppx wheel the bento
carries installed in a folder of its own, so neither the repository's ``serving/`` nor
its ``src/`` can stand in for what the bundle lacks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ppx.config import PROJECT_ROOT

pytestmark = pytest.mark.serving

IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    run = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert run.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    )
    return run.stdout


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> dict[str, Path | str]:
    """Build the bento offline; return its folder, its tag and the installed wheel's folder."""
    tmp = tmp_path_factory.mktemp("bundle")
    project = tmp / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, project / name)
    for name in ("src", "serving"):
        shutil.copytree(PROJECT_ROOT / name, project / name, ignore=IGNORE)
    env = {
        **os.environ,
        "BENTOML_HOME": str(tmp / "bentoml_home"),
        "BENTOML_DO_NOT_TRACK": "True",
        "PIP_NO_INDEX": "1",  # offline: nothing may be downloaded
    }
    pip = [sys.executable, "-m", "pip"]
    _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", "dist", "."], project, env
    )
    wheels = list((project / "dist").glob("ppx-*.whl"))
    assert len(wheels) == 1, wheels
    bentofile = project / "serving" / "bentofile.yaml"
    out = _run([sys.executable, "-m", "bentoml", "build", "-f", str(bentofile), "."], project, env)
    listed = json.loads(_run([sys.executable, "-m", "bentoml", "list", "-o", "json"], project, env))
    assert len(listed) == 1, out
    tag = listed[0]["tag"]
    name, version = tag.split(":")
    bento = tmp / "bentoml_home" / "bentos" / name / version
    site = tmp / "site"
    bundled = list((bento / "env" / "python" / "wheels").glob("ppx-*.whl"))
    assert len(bundled) == 1, "the bento must carry the ppx wheel"
    _run([*pip, "install", "--no-deps", "-q", "--target", str(site), str(bundled[0])], tmp, env)
    return {"bento": bento, "tag": tag, "site": site, "env_home": str(tmp / "bentoml_home")}


def test_bundle_holds_every_module_the_service_imports(bundle):
    src = bundle["bento"] / "src"
    shipped = {p.name for p in (src / "serving").glob("*.py")}
    needed = {p.name for p in (PROJECT_ROOT / "serving").glob("*.py")} - {"decision_service.py"}
    assert needed <= shipped, f"missing from the bundle: {sorted(needed - shipped)}"
    # import the service from the bundle alone: its serving/ and the bundled ppx wheel
    env = {**os.environ, "PYTHONPATH": str(bundle["site"]), "BENTOML_DO_NOT_TRACK": "True"}
    code = "import ppx, serving.model_service as m; print(ppx.__file__); print(m.__file__)"
    out = _run([sys.executable, "-c", code], src, env).split()
    assert Path(out[-2]).is_relative_to(bundle["site"]), out
    assert Path(out[-1]).is_relative_to(src), out


@pytest.mark.slow  # the build plus a start of the four models: about a minute
def test_bundle_starts_and_answers_a_scoring_request(bundle, serving_registry, tmp_path):
    from ppx.serve.launch import Server, free_port, wait_until
    from ppx.serve.routes import example_request

    assert "delivery" in serving_registry.trained, "delivery has no trained version"
    port = free_port()
    env = {
        **os.environ,
        "BENTOML_HOME": bundle["env_home"],
        "BENTOML_DO_NOT_TRACK": "True",
        "PYTHONPATH": str(bundle["site"]),
        "PPX_MLFLOW_DIR": str(serving_registry.mlflow_dir),
        "PPX_MODEL_ALIAS": "champion",
    }
    env.pop("PPX_API_TOKEN", None)
    env.pop("MLFLOW_TRACKING_URI", None)  # the store is PPX_MLFLOW_DIR
    cmd = [sys.executable, "-m", "bentoml", "serve", bundle["tag"], "--host", "127.0.0.1"]
    log_path = tmp_path / "bundle.log"
    with open(log_path, "wb") as log:
        # cwd outside the repository: nothing but the bento and the wheel is importable
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until(server, "/readyz", timeout=300.0)
        r = httpx.post(
            server.url + "/delivery/estimate", json=example_request("delivery_estimate"), timeout=60
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == "ppx-delivery" and body["alias"] == "champion"
        assert body["promise_days"] >= body["p50_days"] >= 0
    finally:
        server.stop()
