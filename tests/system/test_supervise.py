"""scripts/supervise.sh, which `make up` runs each service under: a failed process is started again, as the
systemd units do, a graceful or refused one is not, and SIGTERM stops the process and the supervision."""

import os
import signal
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import REPO_ROOT, SHARDS, free_port, wait_until

SUPERVISE = REPO_ROOT / "scripts/supervise.sh"


@pytest.fixture(autouse=True)
def _groups():
    """The process groups the test started, killed at its end however it ends: a supervisor that failed to
    stop must not outlive its test."""
    groups = []
    yield groups
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass


def supervise(tmp_path, groups, *command, log_name="supervise.log"):
    """Starts `command` under supervise.sh, in a process group of its own, with a short restart pause; returns
    the supervisor and its pid file."""
    pid_file = tmp_path / "command.pid"
    log = open(tmp_path / log_name, "wb")
    supervisor = subprocess.Popen(
        [str(SUPERVISE), str(pid_file), "--", *command], stdin=subprocess.DEVNULL, stdout=log,
        stderr=subprocess.STDOUT, env={**os.environ, "SUPERVISE_RESTART_SECONDS": "0.2"}, start_new_session=True)
    log.close()
    groups.append(supervisor.pid)
    return supervisor, pid_file


def runs(path):
    return path.read_text().split() if path.exists() else []


def test_a_failed_command_is_started_again_until_it_exits_0(tmp_path, _groups):
    # Its first run exits 1, its second is killed by SIGKILL, its third exits 0: three runs, then done.
    record = tmp_path / "runs"
    script = f"""
        echo $$ >> {record}
        case $(wc -l < {record}) in
            1) exit 1 ;;
            2) kill -KILL $$ ;;
            *) exit 0 ;;
        esac
    """
    supervisor, pid_file = supervise(tmp_path, _groups, "bash", "-c", script)
    assert supervisor.wait(timeout=30) == 0
    assert len(runs(record)) == 3, runs(record)
    assert runs(pid_file) == runs(record)[-1:], "the pid file names the last run"
    log = (tmp_path / "supervise.log").read_text()
    assert "exited with status 1; starting it again" in log and "exited with status 137; starting it again" in log


def test_a_command_that_refuses_its_configuration_is_not_started_again(tmp_path, _groups):
    record = tmp_path / "runs"
    supervisor, _ = supervise(tmp_path, _groups, "bash", "-c", f"echo $$ >> {record}; exit 2")
    assert supervisor.wait(timeout=30) == 2
    assert len(runs(record)) == 1


def test_sigterm_stops_the_command_gracefully_and_nothing_is_started_again(tmp_path, _groups):
    record, stopped = tmp_path / "runs", tmp_path / "stopped"
    script = f"""
        trap 'echo $$ > {stopped}; exit 0' TERM
        echo $$ >> {record}
        while :; do sleep 0.05; done
    """
    supervisor, _ = supervise(tmp_path, _groups, "bash", "-c", script)
    wait_until(lambda: runs(record), 30, lambda: "the command's first run")
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=30) == 0
    assert runs(stopped) == runs(record), "the run under way got the SIGTERM"
    assert len(runs(record)) == 1


def test_a_service_killed_with_sigkill_is_started_again_and_ready(services, tmp_path, _groups):
    port = free_port()
    supervisor, pid_file = supervise(
        tmp_path, _groups,
        str(services.bin_dir / "switchboard-closer"), "--amqp-url", services.amqp_url, "--http-port", str(port),
        "--instance-name", "closer-supervised", "--shards-count", str(SHARDS), log_name="closer-supervised.log")

    def ready():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_tail():
        return (tmp_path / "closer-supervised.log").read_text(errors="replace")[-3000:]

    try:
        wait_until(lambda: runs(pid_file) and ready(), 120, lambda: f"the supervised closer to be ready\n{log_tail()}")
        first = int(runs(pid_file)[0])
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: runs(pid_file) != [str(first)] and ready(), 120,
                   lambda: f"the closer to be started again and ready\n{log_tail()}")
        assert "exited with status 137; starting it again" in log_tail()
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0, log_tail()


@pytest.mark.parametrize("shards", [SHARDS + 1, SHARDS - 1])
def test_a_service_with_another_shard_count_than_its_deployment_exits_2_and_is_not_started_again(
        services, tmp_path, _groups, shards):
    """Started with another shards.count than the running deployment's, a service stops before it declares
    anything (it would move desks to shards that do not know them) and is not started again."""
    supervisor, pid_file = supervise(
        tmp_path, _groups,
        str(services.bin_dir / "switchboard-router"), "--amqp-url", services.amqp_url, "--http-port", str(free_port()),
        "--instance-name", f"router-{shards}-shards", "--shards-count", str(shards), log_name="router.log")
    log = tmp_path / "router.log"
    assert supervisor.wait(timeout=120) == 2, log.read_text(errors="replace")[-3000:]
    assert len(runs(pid_file)) == 1
    said = log.read_text(errors="replace")
    expected = "fewer shards than" if shards > SHARDS else "more shards than"
    assert f"{expected} {shards}" in said, said[-3000:]
