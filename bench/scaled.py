"""A throwaway copy of the project with 20 agencies, and deterministic deliveries for it.

The bundled demo has seven agencies, each with its own formats and code maps (feed YAML and
seed rows). The benchmark needs twenty: agencies 8-20 are clones of the seven (``SSA2``,
``VA3``, ...) with their own feed YAML, seed rows and data drawn from another random seed.
Clones live only in a copy of the project, so the demo and its tests never see them.
"""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

from dagster_project.config import PROJECT_ROOT
from dagster_project.demo.generate import generate

BASE_AGENCIES = ["DOS", "FSA", "IRS", "NYC311", "SSA", "USCIS", "VA"]
COPIED = ["dagster_project", "dbt", "seeds", "expectations", "bench", "pyproject.toml"]
SKIPPED = shutil.ignore_patterns("target", "logs", "__pycache__", ".user.yml")
DEMO_ROWS_PER_AGENCY_MONTH = 1_006  # source records per agency and month at scale 1 (measured on the demo)


def clone_codes(agencies: int) -> list[tuple[str, str]]:
    """(clone, template) pairs beyond the seven: SSA2 ... VA2, DOS3 ..., in a fixed order."""
    pairs, copy = [], 2
    while len(BASE_AGENCIES) + len(pairs) < agencies:
        for template in BASE_AGENCIES:
            if len(BASE_AGENCIES) + len(pairs) < agencies:
                pairs.append((f"{template}{copy}", template))
        copy += 1
    return pairs


def make_project(dest: Path, agencies: int = 20) -> Path:
    """Copy the project to ``dest`` and register the clone agencies there (feeds + seed rows)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = PROJECT_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=SKIPPED, dirs_exist_ok=True)
        else:
            shutil.copy(src, dest / name)
    pairs = clone_codes(agencies)
    feeds = dest / "dagster_project" / "feeds"
    for clone, template in pairs:
        text = (feeds / f"{template}.yml").read_text()
        (feeds / f"{clone}.yml").write_text(text.replace(f"agency: {template}\n", f"agency: {clone}\n"))
    for seed in (dest / "seeds").glob("*.csv"):
        with seed.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows or "agency_code" not in rows[0]:
            continue
        col = rows[0].index("agency_code")
        extra = [[c if i == col else v for i, v in enumerate(r)] for c, t in pairs for r in rows[1:] if r[col] == t]
        with seed.open("a", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(extra)
    return dest


def scale_for(rows: int, agencies: int, months: int) -> float:
    return rows / (DEMO_ROWS_PER_AGENCY_MONTH * agencies * months)


HISTORY_END = date(2026, 6, 1)  # the last month of generated history (before today: no future dates)


def history_start(months: int, end: date = HISTORY_END) -> date:
    index = end.year * 12 + end.month - 1 - (months - 1)
    return date(index // 12, index % 12 + 1, 1)


def make_landing(landing: Path, *, rows: int, agencies: int = 20, months: int = 36, end: date = HISTORY_END) -> None:
    """Deliveries of ``agencies`` agencies over ``months`` months ending with ``end``, about
    ``rows`` source records in all. Deterministic: the same arguments write the same bytes."""
    start = history_start(months, end)
    scale = scale_for(rows, agencies, months)
    pairs = clone_codes(agencies)
    copies = 1 + max((int(c[len(t) :]) - 1 for c, t in pairs), default=0)
    for n in range(copies):
        out = landing if n == 0 else landing.parent / f".{landing.name}.seed{n}"
        generate(out, seed=42 + n, scale=scale, start=start, months=months)
        if n:
            for clone, template in pairs:
                if clone == f"{template}{n + 1}":
                    shutil.move(out / template, landing / clone)
            shutil.rmtree(out)


def write_agency_day(landing: Path, period: str, agency: str = "SSA") -> Path:
    """One agency's calls of one day, delivered as a new month's file (what a daily feed sends):
    the first day of the agency's latest call file, re-dated into ``period`` with new ids."""
    folder = landing / agency / "call_center"
    latest = sorted(folder.glob("*.psv"))[-1]
    lines = latest.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    first_day = rows[0].split("|")[1][:10]
    day = f"{period}-{first_day[8:]}"
    kept = [r.replace(first_day, day, 1) for r in rows if r.split("|")[1].startswith(first_day)]
    kept = [f"D{r}" for r in kept]  # new call ids
    path = folder / f"ssa_800_calls_{period}.psv"
    path.write_text("\n".join([header, *kept]) + "\n")
    return path
