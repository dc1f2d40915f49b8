"""Figures, the machine they were measured on, and the Markdown report that lists them."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import torch

from gating_core.train.precision import bf16_supported

LoadAverage = tuple[float, float, float]


def load_average() -> LoadAverage:
    """Return the 1-, 5- and 15-minute load averages of the machine."""
    one, five, fifteen = os.getloadavg()
    return (one, five, fifteen)


def format_load(load: LoadAverage) -> str:
    return " / ".join(f"{value:.2f}" for value in load)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median needs at least one value; received none")
    return float(statistics.median(values))


@dataclass(frozen=True)
class Figure:
    """One measured figure: its value as shown, its target and whether the value meets it.

    `met` is None for a figure without a target. `load` is the load average
    when the measurement ended.
    """

    section: str
    name: str
    value: str
    target: str
    met: bool | None
    load: LoadAverage
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "no target"
        return "met" if self.met else "**not met**"


def ratio_figure(section: str, name: str, ratio: float, target: float, at_most: bool, detail: str = "") -> Figure:
    """Build the figure of a ratio against a maximum (`at_most`) or a minimum target.

    `detail` follows the ratio in brackets, for the two values it divides.
    """
    met = ratio <= target if at_most else ratio >= target
    bound = "≤" if at_most else "≥"
    value = f"{ratio:.3f} ({detail})" if detail else f"{ratio:.3f}"
    return Figure(section, name, value, f"{bound} {target:g}", met, load_average())


@dataclass(frozen=True)
class FailedSection:
    """A section that raised instead of producing figures."""

    section: str
    title: str
    error: str
    load: LoadAverage


@dataclass
class Report:
    """Everything `benchmarks.run` writes: machine, method, figures and per-section details."""

    profile: str
    started_load: LoadAverage = field(default_factory=load_average)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    figures: list[Figure] = field(default_factory=list)
    failures: list[FailedSection] = field(default_factory=list)
    details: dict[str, list[str]] = field(default_factory=dict)
    finished_load: LoadAverage | None = None
    seconds: float | None = None

    def add_details(self, title: str, lines: list[str]) -> None:
        self.details.setdefault(title, []).extend(lines)

    def to_markdown(self, method: list[str]) -> str:
        """Render the report as Markdown."""
        lines = [
            "# GateLab benchmarks",
            "",
            f"Written by `python -m benchmarks.run` ({self.profile} profile) on {self.started_at:%Y-%m-%d %H:%M} UTC "
            f"in {self.seconds or 0:.0f} s.",
            "",
            "## Machine",
            "",
            *describe_machine(),
            "",
            "## Load",
            "",
            "Other processes share this machine's cores, so every figure carries the load average "
            "(1, 5 and 15 minutes) read when its measurement ended.",
            "",
            f"- At start: {format_load(self.started_load)}",
            f"- At end: {format_load(self.finished_load) if self.finished_load else 'not reached'}",
            "",
            "## Method",
            "",
            *method,
            "",
        ]
        lines += self._results_table()
        for title, detail_lines in self.details.items():
            lines += ["", f"## {title}", "", *detail_lines]
        return "\n".join(lines) + "\n"

    def _results_table(self) -> list[str]:
        lines = ["## Results", "", "| | Figure | Measured | Target | Verdict | Load at end |", "|---|---|---|---|---|---|"]
        for figure in sorted(self.figures, key=lambda figure: figure.section):
            lines.append(
                f"| {figure.section} | {figure.name} | {figure.value} | {figure.target} | {figure.verdict} "
                f"| {format_load(figure.load)} |"
            )
        for failure in self.failures:
            lines.append(
                f"| {failure.section} | {failure.title} | failed: {failure.error} | | **not measured** "
                f"| {format_load(failure.load)} |"
            )
        notes = [figure for figure in self.figures if figure.note]
        if notes:
            lines += ["", "Notes on the figures:", ""]
            lines += [f"- {figure.section}, {figure.name}: {figure.note}" for figure in notes]
        return lines


def describe_machine() -> list[str]:
    """Return Markdown list items naming the CPU, its cores and bf16 support, torch and the GPU."""
    cpu = torch.device("cpu")
    flags = _cpu_flags()
    bf16_units = [name for name in ("avx512_bf16", "amx_bf16") if name in flags]
    lines = [
        f"- CPU: {_cpu_model()}, {len(os.sched_getaffinity(0))} cores available to this process "
        f"({os.cpu_count()} online)",
        f"- bf16: {'supported' if bf16_supported(cpu) else 'not supported'} by oneDNN on this CPU"
        f" (CPU flags: {', '.join(bf16_units) or 'none of avx512_bf16, amx_bf16'})",
        f"- Python {platform.python_version()}, torch {torch.__version__}, intra-op threads: {torch.get_num_threads()}",
    ]
    if torch.cuda.is_available():
        lines.append(f"- GPU: {torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}")
    else:
        lines.append("- GPU: none available")
    return lines


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()
