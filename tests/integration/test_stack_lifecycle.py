"""The embedded stack stops everything it started, by PID, and frees its ports."""

import psutil

from services.embedded.process import port_open
from services.embedded.stack import LocalStack


def test_stack_stops_its_processes_and_removes_its_state():
    stack = LocalStack(["redis", "kafka"]).start()
    pids = stack.pids
    ports = [stack.redis.port, stack.kafka.port]
    state_dir = stack.state_dir
    assert len(pids) == 2
    assert all(psutil.pid_exists(pid) for pid in pids)
    assert all(port_open(port) for port in ports)
    stack.stop()
    assert not any(psutil.pid_exists(pid) for pid in pids)
    assert not any(port_open(port) for port in ports)
    assert not state_dir.exists()
