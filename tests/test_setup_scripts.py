"""The set-up finds a Python 3.10 by itself, or stops with a clear message."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

FIND = ROOT / "scripts" / "find_python310.sh"
PY310 = Path(sys.executable).resolve()  # the venv is built from a 3.10
SYSTEM_TOOLS = ["bash", "env", "ls", "sort", "cat", "dirname"]


def sandbox_path(tmp_path: Path) -> Path:
    """A PATH directory with basic tools but no Python and no pyenv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in SYSTEM_TOOLS:
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if found:
            (bin_dir / tool).symlink_to(found)
    return bin_dir


def find(tmp_path: Path, bin_dir: Path, pyenv_root: Path) -> subprocess.CompletedProcess:
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "PYENV_ROOT": str(pyenv_root)}
    return subprocess.run(["bash", str(FIND)], env=env, capture_output=True, text=True,
                          timeout=60)


def test_python310_on_path_is_used(tmp_path: Path) -> None:
    bin_dir = sandbox_path(tmp_path)
    (bin_dir / "python3.10").symlink_to(PY310)
    result = find(tmp_path, bin_dir, tmp_path / "no-pyenv")
    assert result.returncode == 0, result.stderr
    assert "3.10" in subprocess.run([result.stdout.strip(), "--version"],
                                    capture_output=True, text=True).stdout


def test_python310_found_through_pyenv(tmp_path: Path) -> None:
    bin_dir = sandbox_path(tmp_path)
    version_bin = tmp_path / "pyenv" / "versions" / "3.10.99" / "bin"
    version_bin.mkdir(parents=True)
    (version_bin / "python3.10").symlink_to(PY310)
    result = find(tmp_path, bin_dir, tmp_path / "pyenv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(version_bin / "python3.10")


def test_wrong_python_is_ignored_and_error_is_clear(tmp_path: Path) -> None:
    bin_dir = sandbox_path(tmp_path)
    fake = bin_dir / "python3.10"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    result = find(tmp_path, bin_dir, tmp_path / "no-pyenv")
    assert result.returncode == 1
    assert "needs Python 3.10" in result.stderr and "pyenv install" in result.stderr
    assert os.path.exists(FIND)
