"""Opening the course: ``jupyter lab notebooks/`` serves the notebooks.

Starts JupyterLab (installed by the ``dev`` extra) the way the README tells a student to, on a free port of
127.0.0.1 only, with a token and with its runtime, configuration and settings folders in a temporary directory;
waits (bounded) until its REST API answers; then asks it, with the token, for the list of ``notebooks/``
(``/api/contents``), for one notebook's cells, for the kernels it can start (``/api/kernelspecs``) and for the
JupyterLab page (``/lab``); and checks that a request without the token is refused. The server is stopped (and
killed if it does not stop) whatever happens.
"""

import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from notebook_runner import NOTEBOOK_DIR

if importlib.util.find_spec("jupyterlab") is None:            # (importing it would cost 2 s)
    pytest.skip("JupyterLab is not installed (python -m pip install -e \".[dev]\")", allow_module_level=True)

START_TIMEOUT = 120          # seconds to wait for the server to answer (a loaded 2-core machine is slow)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, token=None, timeout=10):
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


@pytest.fixture
def jupyter_lab(tmp_path):
    """A running ``jupyter lab`` serving ``notebooks/``: yields ``(base url, token)``; always stopped."""
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    cmd = [sys.executable, "-m", "jupyterlab", str(NOTEBOOK_DIR), "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")                       # CI containers run as root; a student's laptop does not
    log = open(tmp_path / "server.log", "w+")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                log.seek(0)
                pytest.fail(f"jupyter lab exited with code {server.returncode}:\n{log.read()[-3000:]}")
            try:
                _get(f"{base}/api/status", token, timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"jupyter lab did not answer within {START_TIMEOUT} s:\n{log.read()[-3000:]}")
                time.sleep(0.25)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)
        log.close()


@pytest.mark.notebooks
def test_jupyter_lab_serves_the_notebooks(jupyter_lab):
    base, token = jupyter_lab
    status, kind, body = _get(f"{base}/api/contents/", token)
    assert status == 200 and "json" in kind
    listed = {item["name"]: item for item in json.loads(body)["content"]}
    expected = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
    assert expected and sorted(n for n in listed if n.endswith(".ipynb")) == expected
    assert all(listed[name]["type"] == "notebook" for name in expected)

    status, _, body = _get(f"{base}/api/contents/{expected[0]}?content=1", token)
    nb = json.loads(body)
    assert status == 200 and nb["type"] == "notebook" and nb["format"] == "json"
    assert len(nb["content"]["cells"]) == len(json.loads((NOTEBOOK_DIR / expected[0]).read_text())["cells"])

    status, _, body = _get(f"{base}/api/kernelspecs", token)
    assert "python3" in json.loads(body)["kernelspecs"]                # the notebooks' kernel can start

    status, kind, body = _get(f"{base}/lab", token)
    assert status == 200 and "html" in kind and b"JupyterLab" in body

    with pytest.raises(urllib.error.HTTPError) as refused:                 # no token, no notebooks
        _get(f"{base}/api/contents/")
    assert refused.value.code == 403
