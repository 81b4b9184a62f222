"""Every ```bash and ```python block of README.md and docs/**/*.md runs (the docs convention).

How a page runs (what a reader who copies the blocks in order gets):
- from the repository root, blocks of one page in order, each in its own process; a later block
  may read what an earlier one wrote under out/ (and only there: anything else a page writes
  fails the test);
- ```bash (also ```sh, ```shell) blocks with ``bash -e`` and the bin folder of the interpreter
  running the tests first on PATH, so ``margin-engine`` is this checkout's command; a literal
  ``.venv/bin/`` in a block is that same folder (what ``make demo``/``make test`` create);
- ```python blocks with the interpreter running the tests;
- a block in any other language is not run (```text for output and synopses, ```json for
  formats); a block without a language must not start with a command (``$ ``,
  ``margin-engine``, ``python -m``): mark it ```bash to run it or ```text to show it.
On failure the test names the page, the block number (1-based, counting run blocks) and the
output.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUN = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
COMMAND = re.compile(r"^\s*(\$ |margin-engine |\.venv/bin/|python -m |make )")
#: Lines of a bash block not run here, and why. Allow-list: keep it to the set-up commands.
SKIP_LINES = {
    "make test": "it is what runs this test",
    # 'make demo' = install, then 'margin-engine demo' (the Makefile): the install is this
    # environment already; the demo itself runs, so later blocks find out/demo.
}
REPLACE_LINES = {"make demo": "margin-engine demo"}
#: Pages that take longer than a few seconds (still part of `make test`).
SLOW_PAGES = {"docs/backtesting.md", "docs/calibration.md", "docs/dynamic-margin.md",
              "docs/real-data-study.md"}
BLOCK_TIMEOUT_S = 300


def blocks(page: Path) -> list[tuple[str, str]]:
    """``(kind, code)`` of the blocks a page runs, in order; ``kind`` is bash or python."""
    return [(RUN[lang], code) for lang, code in FENCE.findall(page.read_text())
            if lang in RUN]


def unrun_commands(page: Path) -> list[str]:
    """First lines of blocks that are not run but look like a command."""
    out = []
    for lang, code in FENCE.findall(page.read_text()):
        first = next((ln for ln in code.splitlines() if ln.strip()), "")
        if lang in ("", "console") and COMMAND.match(first):  # ```text: shown, not run
            out.append(f"```{lang} block starting {first.strip()[:60]!r}")
    return out


def bash_script(code: str) -> str:
    lines = []
    for line in code.splitlines():
        bare = line.split("#")[0].strip()
        if bare in SKIP_LINES:
            lines.append(f"# skipped by tests/docs: {line}")
            continue
        if bare in REPLACE_LINES:
            line = REPLACE_LINES[bare]
        lines.append(re.sub(r"(?<![\w/.])\.venv/bin/", f"{BIN}/", line))
    return "\n".join(lines) + "\n"


def changed_outside_out() -> set[str] | None:
    """Files git sees as changed or new outside out/ (None without git)."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        return None
    res = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return None
    return {ln[3:] for ln in res.stdout.splitlines() if not ln[3:].startswith("out/")}


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def params() -> list:
    out = []
    for page in PAGES:
        marks = [pytest.mark.slow] if page_id(page) in SLOW_PAGES else []
        out.append(pytest.param(page, id=page_id(page), marks=marks))
    return out


@pytest.mark.parametrize("page", params())
def test_every_block_of_the_page_runs(page: Path, tmp_path: Path) -> None:
    assert not unrun_commands(page), (
        f"{page_id(page)}: commands in blocks that are not run (mark them ```bash): "
        f"{unrun_commands(page)}")
    todo = blocks(page)
    if not todo:
        return
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "COLUMNS": "160", "MPLBACKEND": "Agg"}
    src = ROOT / "src"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(src), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]])
    before = changed_outside_out()
    for k, (kind, code) in enumerate(todo, start=1):
        script = tmp_path / f"block{k}.{'sh' if kind == 'bash' else 'py'}"
        script.write_text(bash_script(code) if kind == "bash" else code)
        cmd = ["bash", "-e", str(script)] if kind == "bash" else [sys.executable, str(script)]
        try:
            res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=BLOCK_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{page_id(page)} block {k} ({kind}) ran over {BLOCK_TIMEOUT_S} s:\n"
                        f"{code}")
        if res.returncode != 0:
            output = (res.stdout + res.stderr)[-3000:]
            pytest.fail(f"{page_id(page)} block {k} ({kind}) exited {res.returncode}:\n"
                        f"{code}\n--- output ---\n{output}")
    after = changed_outside_out()
    if before is not None and after is not None:
        assert after <= before, (f"{page_id(page)} wrote outside out/: "
                                 f"{sorted(after - before)}")
