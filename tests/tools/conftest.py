"""Helpers for running the tools end to end on a tiny built-in dataset."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run_tool(script, *args, cwd, check=True, timeout=600):
    """Run ``tools/<script>`` in a fresh interpreter (umask 022, as a
    user's shell has it); return the result."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='2')
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / script), *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        umask=0o022)
    if check and proc.returncode != 0:
        raise AssertionError(f'{script} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


@pytest.fixture
def run_tool():
    """``run_tool(script, *args, cwd=..., check=True)`` runs tools/<script>."""
    return _run_tool


@pytest.fixture
def repo_root():
    """The repository's root directory."""
    return REPO
