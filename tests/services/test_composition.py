"""How the composition root runs components: loops on threads, stopped, joined and closed in reverse."""

import logging
import threading

import pytest

from services.composition import ComponentThreads, run_until_stopped


class Looping:
    """A component that loops until told to stop (or fails at once), recording when it is closed."""

    def __init__(self, name: str, closed: list[str], *, fails: bool = False) -> None:
        self.name = name
        self.closed = closed
        self.fails = fails
        self.started = threading.Event()

    def run(self, stop_event: threading.Event) -> None:
        self.started.set()
        if self.fails:
            raise RuntimeError(f"{self.name} broke")
        stop_event.wait()

    def close(self) -> None:
        self.closed.append(self.name)


def test_threads_run_until_stop_then_close_in_reverse_order_of_start(caplog):
    closed: list[str] = []
    watcher, broken = Looping("watcher", closed), Looping("dispatcher", closed, fails=True)
    threads = ComponentThreads(join_timeout_s=5)
    with caplog.at_level(logging.ERROR, logger="services.composition"):
        threads.start("watcher", watcher)
        threads.start("dispatcher", broken)
        loops: list[str] = []
        threads.start_loop("simulator", lambda stop: loops.append("ran") or stop.wait())
        assert watcher.started.wait(5)
        assert broken.started.wait(5)
        assert closed == []  # nothing closes while running, not even the component that failed
        threads.stop()
    assert closed == ["dispatcher", "watcher"]
    assert loops == ["ran"]
    assert threads.stop_event.is_set()
    assert "dispatcher stopped with an error" in caplog.text


def test_a_component_run_in_the_foreground_is_closed_even_when_it_fails():
    closed: list[str] = []
    with pytest.raises(RuntimeError, match="broke"):
        run_until_stopped(Looping("dispatcher", closed, fails=True), threading.Event())
    assert closed == ["dispatcher"]
