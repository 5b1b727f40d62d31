"""Child processes that die with this one, even when it is killed with ``kill -9``.

vLLM starts its engine in processes of its own. A ``kill -9`` of mslt-it runs no Python, so they
kept running under init, holding gigabytes, until someone found and killed them. A watchdog
process (a dozen lines, no imports of mslt-it) records this process's descendants every second
and, once this process is gone, kills them. Linux only (``/proc``); elsewhere it does nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WATCHDOG = r"""
import os, signal, sys, time
parent, known = int(sys.argv[1]), set()

def descendants(root):
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    for child in map(int, handle.read().split()):
                        if child not in found and child != os.getpid():
                            found.add(child)
                            todo.append(child)
        except OSError:
            pass
    return found

while os.getppid() == parent:
    known = descendants(parent)
    time.sleep(float(sys.argv[2]))
for pid in known:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""

POLL_SECONDS = 1.0
"""How often the watchdog looks: a child started within the last poll before a kill is missed."""


class ChildrenWatchdog:
    """While it runs, this process's descendants are killed if this process dies first."""

    def __init__(self, poll_seconds: float = POLL_SECONDS) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        if not Path(f"/proc/{os.getpid()}/task").is_dir():
            return
        self.process = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(poll_seconds)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to the terminal's group does not stop it first
        )

    def stop(self) -> None:
        """This process ends its children itself now (a clean shutdown): no watching needed."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()
        self.process = None
