"""scripts/up.sh (`make up`): a port another program holds is named at once, before anything starts, instead of
a service failing to listen and being started again until the wait for it runs out."""

import os
import socket
import subprocess

import pytest

from conftest import REPO_ROOT, free_port

RUN_DIR = REPO_ROOT / "var/run"
NODE_PID = REPO_ROOT / "var/rabbitmq/rabbitmq.pid"


def make_up_runs_here():
    """Whether the local node or a supervisor that `make up` started runs: then the test leaves them alone."""
    if NODE_PID.exists():
        return True
    for pid_file in RUN_DIR.glob("*.supervisor.pid") if RUN_DIR.exists() else []:
        try:
            os.kill(int(pid_file.read_text()), 0)
            return True
        except (ValueError, ProcessLookupError, PermissionError):
            continue
    return False


def test_make_up_names_a_taken_port_before_it_starts_anything():
    if make_up_runs_here():
        pytest.skip("make up's node or services run on this machine")
    port = free_port()
    try:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", port))
            listener.listen()
            result = subprocess.run(
                [REPO_ROOT / "scripts/up.sh"], env={**os.environ, "GATEWAY_PORT": str(port)}, cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL, capture_output=True, encoding="utf-8", timeout=60)
    finally:
        # Nothing ran before; whatever a broken up.sh started goes.
        if make_up_runs_here():
            subprocess.run([REPO_ROOT / "scripts/down.sh"], stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"up: port {port}, switchboard-gateway's, is taken by another program" in result.stderr, result.stderr
    assert "GATEWAY_PORT=" in result.stderr, result.stderr
    # Nothing was started: not the node, not a build, not a service.
    assert "rabbitmq-node" not in result.stdout + result.stderr, result.stdout
    assert "up: building" not in result.stdout and "up: started" not in result.stdout, result.stdout
