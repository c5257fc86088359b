"""ManagedProcess: start-up failures carry the log; stop reaches the whole process group."""

import sys
import time

import psutil
import pytest

from services.embedded.process import ManagedProcess, ServiceStartError


def test_start_failure_reports_exit_code_and_log_tail(tmp_path):
    proc = ManagedProcess(
        "broken",
        [sys.executable, "-c", "import sys; print('bad flag --nope'); sys.exit(3)"],
        tmp_path / "broken.log",
        ready=lambda: False,
    )
    with pytest.raises(ServiceStartError, match=r"(?s)exited with code 3.*bad flag --nope"):
        proc.start(timeout_s=60)


def test_not_ready_in_time_is_stopped_and_reported(tmp_path):
    proc = ManagedProcess(
        "sleepy",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        tmp_path / "s.log",
        ready=lambda: False,
    )
    with pytest.raises(ServiceStartError, match="not ready after 1 s"):
        proc.start(timeout_s=1)
    assert proc.pid is None


def test_stop_kills_children_of_the_process_too(tmp_path):
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    proc = ManagedProcess("parent", [sys.executable, "-c", script], tmp_path / "p.log", ready=pid_file.exists)
    proc.start(timeout_s=60)
    parent_pid = proc.pid
    child_pid = int(pid_file.read_text())
    assert psutil.pid_exists(child_pid)
    proc.stop(grace_s=5)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (psutil.pid_exists(child_pid) or psutil.pid_exists(parent_pid)):
        time.sleep(0.05)
    assert not psutil.pid_exists(parent_pid)
    assert not psutil.pid_exists(child_pid)
