"""CPU time and resident memory of processes (the server, the relay, the load generators),
measured from outside with psutil over a chosen window."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]  # no type information shipped


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def system_busy_seconds() -> float:
    """CPU time all cores spent on anything but idling, since boot."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _all_processes() -> dict[int, tuple[str, float]]:
    """Every process's name and CPU time so far (kernel threads included)."""
    out = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        times = proc.info.get("cpu_times")
        if times is not None:
            out[proc.pid] = (str(proc.info.get("name")), float(times.user + times.system))
    return out


def rss_bytes(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def peak_rss_bytes(pid: int) -> int:
    """The kernel's high-water mark of the process's RSS since it started (VmHWM)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss_bytes(pid)


@dataclass
class Usage:
    """What a process used over a window."""

    cpu_seconds: float
    wall_seconds: float
    peak_rss_bytes: int  # highest sample in the window (every 100 ms)
    end_rss_bytes: int

    @property
    def cpu_percent(self) -> float:
        """Percent of one core."""
        return 100.0 * self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0

    @classmethod
    def total(cls, usages: list[Usage]) -> Usage:
        """Several processes of one window as one: CPU and memory added up (the peaks
        too, although each process had its own moment)."""
        return cls(
            sum(u.cpu_seconds for u in usages),
            max(u.wall_seconds for u in usages),
            sum(u.peak_rss_bytes for u in usages),
            sum(u.end_rss_bytes for u in usages),
        )


class Watch:
    """Measures several processes over one window: ``start()``, then ``stop()`` returns
    each pid's :class:`Usage`. RSS is sampled every ``interval`` seconds in a thread.
    ``others_cpu_seconds`` is what every other process on the machine used meanwhile:
    on a shared machine, the noise the figures were measured in; ``others_by_name`` is the
    same by process name (PostgreSQL's backends add up under "postgres")."""

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        self.pids = list(pids)
        self.interval = interval
        self._cpu0: dict[int, float] = {}
        self._peak: dict[int, int] = dict.fromkeys(self.pids, 0)
        self._t0 = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy0 = 0.0
        self._all0: dict[int, tuple[str, float]] = {}
        self.others_cpu_seconds = 0.0
        self.others_top: list[dict[str, object]] = []
        self.others_by_name: dict[str, float] = {}

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._busy0 = system_busy_seconds()
        self._all0 = _all_processes()
        self._cpu0 = {pid: cpu_seconds(pid) for pid in self.pids}
        self._sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> dict[int, Usage]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        wall = time.monotonic() - self._t0
        usage = {}
        for pid in self.pids:
            try:
                cpu = cpu_seconds(pid) - self._cpu0[pid]
                rss = rss_bytes(pid)
            except psutil.Error:
                cpu, rss = 0.0, 0
            usage[pid] = Usage(cpu, wall, self._peak[pid], rss)
        busy = system_busy_seconds() - self._busy0
        self.others_cpu_seconds = max(0.0, busy - sum(u.cpu_seconds for u in usage.values()))
        now = _all_processes()
        spent = [
            (cpu - self._all0[pid][1], name, pid)
            for pid, (name, cpu) in now.items()
            if pid in self._all0 and pid not in usage
        ]
        for pid, (name, cpu) in now.items():
            if pid not in usage:
                before = self._all0[pid][1] if pid in self._all0 else 0.0  # or born since
                self.others_by_name[name] = self.others_by_name.get(name, 0.0) + cpu - before
        self.others_top = [
            {"name": name, "pid": pid, "cpu_percent": round(100 * cpu / wall, 1)}
            for cpu, name, pid in sorted(spent, reverse=True)[:5]
            if cpu > 0.01 * wall
        ]
        return usage

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                self._peak[pid] = max(self._peak[pid], rss_bytes(pid))
