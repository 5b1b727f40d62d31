"""Children that die with their parent, even on kill -9 (vLLM's engine processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from mslt_it.orphans import ChildrenWatchdog
    watchdog = ChildrenWatchdog(poll_seconds=0.1)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    time.sleep(0.5)  # the watchdog has seen the child
    print(child.pid, watchdog.process.pid if watchdog.process else 0, flush=True)
    if sys.argv[1] == "stop":
        watchdog.stop()
        print("stopped", flush=True)
    time.sleep(120)
    """
)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper that may never come in a container."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def start(mode: str) -> tuple[subprocess.Popen[str], int, int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child, watchdog = map(int, parent.stdout.readline().split())
    return parent, child, watchdog


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="the watchdog reads /proc")
def test_a_killed_process_takes_its_children_with_it() -> None:
    parent, child, watchdog = start("keep")
    assert alive(child) and watchdog
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child), "the child outlived its killed parent"
    assert not alive(watchdog)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="the watchdog reads /proc")
def test_a_stopped_watchdog_kills_nothing() -> None:
    parent, child, watchdog = start("stop")
    assert parent.stdout is not None and parent.stdout.readline().strip() == "stopped"
    assert not alive(watchdog)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    time.sleep(0.5)
    assert alive(child)  # its own business now
    os.kill(child, signal.SIGKILL)
