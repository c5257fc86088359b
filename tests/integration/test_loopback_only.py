"""No process started by the test session listens on anything but loopback.

The suite runs in a loopback-only network namespace (deploy/netns.sh); this checks every listener of
this process and its descendants (the embedded stack, and Ray when an earlier test started it).
"""

import ipaddress

import psutil


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)  # '::ffff:127.0.0.1' is IPv4 loopback seen by an IPv6 socket
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def test_loopback_classification():
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("::")
    assert not is_loopback("10.0.0.5")


def test_every_listener_of_the_session_is_on_loopback(local_stack):
    me = psutil.Process()
    ours = {me.pid} | {p.pid for p in me.children(recursive=True)}
    listeners = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert set(local_stack.pids) <= {c.pid for c in listeners}, "every stack server should be listening"
    offenders = [
        (c.pid, c.laddr.ip, c.laddr.port) for c in listeners if c.pid in ours and not is_loopback(c.laddr.ip)
    ]
    assert offenders == []
