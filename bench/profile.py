"""Profile the server under load with py-spy, and summarise where its time goes.

The profile is py-spy's ``raw`` format (collapsed stacks, one ``frame;frame;... count``
line per distinct stack), which speedscope (https://www.speedscope.app) opens as is and
which is easy to total here: the top functions by own time (the innermost frame of each
sample) and by total time (a function anywhere in the stack).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

RATE = 100  # samples per second
# "handler (supportchat/realtime/dispatch.py:42)" -> "handler (supportchat/realtime/dispatch.py)"
_LINE = re.compile(r":\d+\)$")
# "handler (supportchat/realtime/dispatch.py)" -> "supportchat"; "(asyncio/tasks.py)" -> "asyncio"
_PACKAGE = re.compile(r"\(([^/)]+)[/)]")
# The frames under which everything runs (process start, event loop, thread start).
_OUTER = re.compile(
    r"^(<module>|main|_serve|asyncio_run|Runner\.run|Server\.run|Server\.serve|"
    r"Server\._serve|run|Thread\._bootstrap|Thread\._bootstrap_inner|Thread\.run) \("
)


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.is_file() else shutil.which("py-spy")


def start(
    pid: int, seconds: float, out: Path, *, gil_only: bool = True, nonblocking: bool = False
) -> subprocess.Popen[bytes]:
    """Record ``pid`` for ``seconds``. ``gil_only`` (default) keeps only samples of the
    thread holding the GIL: the Python work of the process, without the aiosqlite and
    thread-pool threads that py-spy would otherwise count while they wait on their
    queues. ``nonblocking`` does not pause the process for each sample (less overhead,
    less exact stacks)."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy not found (pip install py-spy)")
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(seconds))),
        "--rate",
        str(RATE),
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    if gil_only:
        cmd.append("--gil")
    if nonblocking:
        cmd.append("--nonblocking")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes], timeout: float = 60) -> str:
    """Wait for py-spy; returns its stderr (empty when it went well)."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err.decode(errors="replace") if proc.returncode else ""


def _frames(stack: str) -> list[str]:
    # py-spy's raw format puts the thread first when asked; never here. Strip line numbers
    # so that one function's lines add up.
    return [_LINE.sub(")", f) for f in stack.split(";") if f]


def top(raw: Path, n: int = 10) -> dict[str, Any]:
    """The ``n`` functions with the most own samples, and with the most total samples."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    package: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        found = _PACKAGE.search(frames[-1])
        package[found.group(1).removesuffix(".py") if found else "?"] += count
        for f in set(frames):
            total[f] += count

    def pct(c: int) -> float:
        return round(100 * c / samples, 1) if samples else 0.0

    # The frames everything runs under (the event loop, a thread's start) say nothing.
    inner = [(f, c) for f, c in total.most_common() if not _OUTER.match(f)]
    return {
        "samples": samples,
        "own": [{"function": f, "percent": pct(c)} for f, c in own.most_common(n)],
        "total": [{"function": f, "percent": pct(c)} for f, c in inner[: n * 2]],
        "packages": [{"package": p, "percent": pct(c)} for p, c in package.most_common(12)],
    }


def markdown(summary: dict[str, Any], seconds: float) -> str:
    active = summary["samples"] / (RATE * seconds) * 100 if seconds else 0
    lines = [
        f"py-spy --gil, {RATE} samples/s for {seconds:g} s: {summary['samples']} samples "
        f"holding the GIL (~{active:.0f}% of the window; the rest of the server's CPU time "
        "ran without the GIL: SQLite's C code in the aiosqlite thread, system calls). "
        "Percentages are of those samples.",
        "",
        "| own time by package (of the innermost frame) | % |",
        "|---|---|",
        *(f"| {x['package']} | {x['percent']} |" for x in summary.get("packages", [])),
        "",
        "| own time: function (innermost frame) | % |",
        "|---|---|",
        *(f"| `{x['function']}` | {x['percent']} |" for x in summary["own"]),
        "",
        "| total time: function (anywhere in the stack; event loop and thread starts left out) "
        "| % |",
        "|---|---|",
        *(f"| `{x['function']}` | {x['percent']} |" for x in summary["total"]),
    ]
    return "\n".join(lines) + "\n"
