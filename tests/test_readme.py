"""README.md and docs/: the README's runnable shell blocks run as written, every relative link resolves,
the README stays short and each page of docs/ that holds what the README used to starts with a summary."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# <!-- runnable --> or <!-- runnable: needs tests/vcsim/vcsim --> on the line before a ```sh block
_RUNNABLE = re.compile(r"^<!-- runnable(?:: needs (?P<needs>\S+))? -->\n```sh\n(?P<body>.*?)^```$", re.M | re.S)


def runnable_blocks() -> list[tuple[str | None, str]]:
    """(what the block needs, or None; its text) for every block README.md marks as runnable, in order."""
    return [(m["needs"], m["body"]) for m in _RUNNABLE.finditer(README.read_text(encoding="utf-8"))]


def _shell(tmp_path: Path) -> dict[str, str]:
    """The environment of a shell where the virtualenv is active, as the README says: its bin first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("VCENTER_PASSWORD", None)
    return env


def _workdir(tmp_path: Path) -> Path:
    """A directory that looks like the repository's to the README's commands (config/, docs/, tests/ by link),
    so what they write (journal, state, reports) stays out of the checkout."""
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("config", "docs", "tests"):
        (work / name).symlink_to(ROOT / name)
    return work


def _run(block: str, cwd: Path, env: dict[str, str], timeout: float) -> None:
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"README block failed ({r.returncode}):\n{block}\n--- stdout\n{r.stdout[-3000:]}\n" \
                              f"--- stderr\n{r.stderr[-3000:]}"


def test_readme_marks_its_tour_runnable():
    blocks = runnable_blocks()
    assert len([b for need, b in blocks if need is None]) >= 6
    text = "".join(b for _, b in blocks)
    for command in ("balancer run", "balancer history", "balancer recommend", "balancer apply", "balancer evacuate",
                    "balancer place", "balancer simulate"):
        assert command in text, command


def _cannot_run(why: str) -> None:
    """Skip the test where it cannot run here; under CI (CI=true) a test that cannot run is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(why)
    pytest.skip(why)


def test_readme_runnable_blocks_run_as_written(tmp_path):
    """Every block the README marks runnable (but the vCenter simulator's, below), in order, in one directory:
    the service's journal and state carry from one block to the next, as in a reader's shell."""
    with socket.socket() as s:  # config/sim-fast.yaml serves its metrics on 9108: not while something else does
        if s.connect_ex(("127.0.0.1", 9108)) == 0:
            _cannot_run("port 9108 (config/sim-fast.yaml's metrics.listen) is in use")
    work, env = _workdir(tmp_path), _shell(tmp_path)
    for needs, block in runnable_blocks():
        if needs is None:
            _run(block, work, env, timeout=600)
    assert (work / "report.html").is_file() and (work / "plan.json").is_file()


@pytest.mark.integration
def test_readme_vcenter_simulator_block_runs_as_written(tmp_path):
    blocks = [b for needs, b in runnable_blocks() if needs == "tests/vcsim/vcsim"]
    assert len(blocks) == 1
    if not (ROOT / "tests" / "vcsim" / "vcsim").is_file() and shutil.which("go") is None:
        _cannot_run("the vCenter simulator launcher is not built (tests/vcsim/build.sh)")
    with socket.socket() as s:  # the README's simulator listens on 8989: not while something else does
        if s.connect_ex(("127.0.0.1", 8989)) == 0:
            _cannot_run("port 8989 is in use")
    work = _workdir(tmp_path)
    _run(blocks[0], work, _shell(tmp_path), timeout=600)
    assert (work / "balancer-vcsim.sqlite").is_file() and not (work / "balancer-journal.sqlite").exists()


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, len(lines)


# The pages that took over the README's sections: each starts with its title and a short summary.
SUMMARISED = ["cli", "configuration", "design", "development", "dpm", "monitoring", "operations", "reports",
              "simulator", "storage-drs", "vcsim"]


@pytest.mark.parametrize("page", SUMMARISED)
def test_docs_page_starts_with_a_summary(page):
    lines = (ROOT / "docs" / f"{page}.md").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ") and lines[1] == "" and lines[2].startswith("*In short:*"), lines[:3]
    summary = lines[2:lines.index("", 2)]
    assert len(summary) <= 8


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped but - and _, spaces to -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(md: Path) -> set[str]:
    text, seen, out = md.read_text(encoding="utf-8"), {}, set()
    fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        if fence:
            continue
        if m := re.match(r"^#{1,6} (.*)", line):
            slug = _slug(m[1])
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    out.update(re.findall(r'<a id="([^"]+)"></a>', text))
    return out


def _links(md: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", md.read_text(encoding="utf-8"), flags=re.M | re.S)  # not in code blocks
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def _pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "grafana" / "README.md", ROOT / "CHANGELOG.md"]


@pytest.mark.parametrize("md", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(md):
    bad = []
    for link in _links(md):
        if re.match(r"^[a-z][a-z0-9+.-]*:", link):  # https:, mailto: ...
            continue
        path, _, anchor = link.partition("#")
        target = (md.parent / path).resolve() if path else md
        if not target.exists():
            bad.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            bad.append(f"{link}: no such heading in {target.relative_to(ROOT)}")
    assert not bad, bad
