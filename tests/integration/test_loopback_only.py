"""No process started by the test session listens on anything but loopback."""

import psutil

LOOPBACK = {"127.0.0.1", "::1"}


def test_every_listener_of_the_session_is_on_loopback(local_stack):
    me = psutil.Process()
    ours = {me.pid} | {p.pid for p in me.children(recursive=True)}
    listeners = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    by_pid = {c.pid for c in listeners}
    assert set(local_stack.pids) <= by_pid, "every stack server should be listening"
    offenders = [
        (c.pid, c.laddr.ip, c.laddr.port) for c in listeners if c.pid in ours and c.laddr.ip not in LOOPBACK
    ]
    assert offenders == []
