"""Stopping a child process (and what it started) cleanly, then firmly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys


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


PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``signum`` to this process when its parent dies.

    Used in the child between fork and exec (``preexec_fn``) for serve's worker cluster,
    and after every fork inside a worker cluster, so that a parent killed with SIGKILL
    (which runs no clean-up) takes its children with it. A no-op off Linux.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signum)


def children_die_with_their_parent(signum: int = signal.SIGKILL) -> None:
    """Make every process forked from now on die when the process that forked it dies.

    django-q2's cluster forks a sentinel, which forks the workers, monitor and pusher;
    none of them notices a SIGKILLed parent. SIGKILL because these children are never
    signalled otherwise: a graceful stop goes through the cluster, which stops them first.
    """
    os.register_at_fork(after_in_child=lambda: die_with_parent(signum))


def start_child(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a supervised child: in its own session (a terminal's Ctrl-C reaches the
    supervisor only, which then stops its children in order) and with a parent-death
    signal (a supervisor killed with SIGKILL, which runs no clean-up, still takes it)."""
    return subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=die_with_parent)


def stop_processes(processes: list[subprocess.Popen], timeout: float = 30) -> dict[int, int]:
    """Stop several children at once: SIGTERM to each, then wait up to ``timeout`` seconds
    for all of them together before killing the process groups left; pid -> exit code."""
    import time

    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    codes = {}
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        codes[process.pid] = process.returncode
    return codes


def wait_until_listening(process: subprocess.Popen, host: str, port: int, timeout: float = 60) -> bool:
    """Wait until something accepts TCP connections on ``host:port``; False as soon as
    ``process`` exits first (a server that could not bind, import or start)."""
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False
