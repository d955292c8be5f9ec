"""`etl completion bash|zsh`: shell completion generated from the parser itself (shtab)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import RunCli


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_names_the_commands_and_their_flags(shell: str, run_cli: RunCli) -> None:
    code, out, err = run_cli("completion", shell)
    assert code == 0, err
    for word in ("watch", "check", "config", "--inbox", "--settle"):
        assert word in out


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_the_bash_script_loads_and_completes_a_command(run_cli: RunCli) -> None:
    _, script, _ = run_cli("completion", "bash")
    probe = (
        script
        + '\nCOMP_WORDS=(etl wat); COMP_CWORD=1; COMP_LINE="etl wat"; COMP_POINT=7\n'
        + '_shtab_etl; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert "watch" in done.stdout.split()
