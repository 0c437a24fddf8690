"""The README's retrieval section runs as written (training shortened: one epoch, large batches)."""

import os
import re
import subprocess
import sys

from tests.conftest import REPO_ROOT


def section_blocks(title: str) -> list[tuple[str, str]]:
    """The fenced code blocks of a README section: ``(language, code)``."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


def test_retrieval_section_runs_as_written(tmp_path):
    blocks = section_blocks("Retrieval")
    assert [language for language, _ in blocks] == ["bash", "python"]
    (tmp_path / "run_recbole_umi.py").write_text((REPO_ROOT / "run_recbole_umi.py").read_text())
    commands = blocks[0][1].strip().splitlines()
    assert commands[0].startswith("python run_recbole_umi.py")
    commands[0] += " --epochs=1 --train_batch_size=2048"  # the one change: a short training
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}
    # the worker's thread count (conftest: 1 beside the other worker); torch's default of one
    # a core beside another busy process made this test's one epoch 40x slower (52 s, not 1.3)
    env.update({name: os.environ[name] for name in ("OMP_NUM_THREADS",) if name in os.environ})
    outputs = []
    for command in commands:
        command = command.replace("python ", f"{sys.executable} ", 1)
        done = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    # the two recommend commands print a header and 10 ranked items each, with titles
    for output in outputs[2:]:
        header, *lines = output.strip().splitlines()
        assert header.split() == ["rank", "item", "score", "title"]
        assert [line.split()[0] for line in lines] == [str(rank) for rank in range(1, 11)]
        assert all(len(line.split()) >= 4 for line in lines)
    done = subprocess.run([sys.executable, "-c", blocks[1][1]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout.strip().splitlines()
    assert len(printed) == 3 and all(line.startswith("[[(") for line in printed)
