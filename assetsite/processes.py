"""Stopping a child process (and what it started) cleanly, then firmly."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process(process: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM, wait ``timeout`` seconds, then SIGKILL its process group; return its code.

    The child must have been started with ``start_new_session=True`` so that its group
    holds only it and its own children (a qcluster's workers, serve's qcluster).
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode
