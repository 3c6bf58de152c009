"""Running hostile input in a child process under a memory limit and a
time-out, so that an unbounded parse fails its test instead of the machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

MEMORY_LIMIT = 1 << 30  # address space of the child, bytes
TIME_LIMIT = 60  # seconds


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_bounded(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """``python *args`` with ``stdin``, at most MEMORY_LIMIT of address space
    and TIME_LIMIT seconds (``subprocess.TimeoutExpired`` beyond)"""
    return subprocess.run(
        [sys.executable, *args],
        input=stdin,
        capture_output=True,
        timeout=TIME_LIMIT,
        preexec_fn=_limit_memory,
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
    )
