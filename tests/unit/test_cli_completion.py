"""`corral completion bash|zsh|fish`: the scripts are printed, bash installs the bash one, and completion answers
through the completion env protocol (`_CORRAL_COMPLETE`) from the real command tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _corral(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral.entry", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_completion_of_corral_sta_offers_stacks_and_start() -> None:
    done = _corral(_CORRAL_COMPLETE="complete_bash", COMP_WORDS="corral sta", COMP_CWORD="1")
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["stacks", "start", "stats"]
    done = _corral(_CORRAL_COMPLETE="complete_bash", COMP_WORDS="corral ps --fi", COMP_CWORD="2")
    assert done.stdout.split() == ["--filter"]
    done = _corral(_CORRAL_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS="corral completion ")
    assert all(f'"{shell}"' in done.stdout for shell in ("bash", "zsh", "fish")), done.stdout


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o default -F"), ("zsh", "#compdef corral"), ("fish", "complete --command corral")],
)
def test_each_shell_gets_its_script(shell: str, marker: str) -> None:
    done = _corral("completion", shell)
    assert done.returncode == 0 and marker in done.stdout and "_CORRAL_COMPLETE" in done.stdout
    assert _corral("completion", "tcsh").returncode != 0


@pytest.mark.skipif(shutil.which("bash") is None or not (BIN / "corral").exists(), reason="needs bash and corral")
def test_the_bash_script_installs_and_completes() -> None:
    script = (
        "source <(corral completion bash) && complete -p corral && "
        "COMP_WORDS=(corral sta); COMP_CWORD=1; _corral_completion corral && printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    done = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "complete -o default -F _corral_completion corral"
    assert sorted(lines[1:]) == ["stacks", "start", "stats"]
