"""Files in the landing zone that no feed claims: said out loud, never silently left behind.

A feed claims what the loader would pick up: ``loader.discover`` (``(landing / agency).glob(pattern)``,
files and links). Everything else under ``data/landing/`` that is not a folder is *unclaimed*: a
look-alike agency folder (``SSА`` with a Cyrillic A), a folder in the wrong case (``ssa/``), a
misspelt feed folder (``call_centre/``), a sub-folder, a suffix in capitals (``.PSV``) or a
compressed copy (``.psv.gz``) in a feed that reads ``.psv``, a link, a FIFO. Each is listed with
the feed it most likely meant, so an operator can move or rename it.

The walk reads names only: it never opens or reads a file (a FIFO cannot block it), never
follows a linked folder (a link is listed as it is, unless a feed claims files beneath it), and
leaves out hidden names (starting with ``.``: an upload tool's partial files, ``.DS_Store``) and
everything under a hidden folder. A folder it may not read is listed too.

A name is shown through ``shown_name``: control characters, line breaks, ANSI escapes, invisible
and look-alike letters are written escaped (``\\n``, ``\\x1b``, ``\\u0410``), so a file name can
never forge a line of the run summary, a log or a page.
"""

from __future__ import annotations

import difflib
import os
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from dagster_project.ingest.loader import discover
from dagster_project.ingest.personal_data import LOOK_ALIKES, shown_name
from dagster_project.registry import FeedSpec


@dataclass(frozen=True)
class Unclaimed:
    """A landing-zone entry no feed claims: its path (relative to the landing zone, as on disk),
    what it is, and the feed it most likely meant."""

    path: str
    kind: str  # file, link, fifo, socket, device, unreadable folder
    nearest: FeedSpec | None

    @property
    def shown(self) -> str:
        """The path, safe to print (see ``shown_name``)."""
        return shown_name(self.path)

    @property
    def nearest_feed(self) -> str:
        """``SSA call_center/*.psv``: the nearest feed's agency and pattern (as registered, so safe)."""
        return f"{self.nearest.agency} {self.nearest.pattern}" if self.nearest else "none"

    def line(self) -> str:
        """``path  (nearest feed: SSA call_center/*.psv)``, the kind first when it is not a plain file."""
        what = "" if self.kind == "file" else f"{self.kind}: "
        return f"{what}{self.shown}  (nearest feed: {self.nearest_feed})"


def skeleton(text: str) -> str:
    """What a name looks like, for matching: NFKC, look-alike letters as Latin, any case, letters
    and digits only (``SSА`` with a Cyrillic A, ``ssa`` and ``S.S.A`` all read ``ssa``)."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).translate(LOOK_ALIKES).casefold() if c.isalnum())


def unclaimed_files(landing: Path, specs: Iterable[FeedSpec]) -> list[Unclaimed]:
    """Every non-folder entry under ``landing`` that no feed claims, sorted by path (nothing when
    the landing zone does not exist)."""
    specs = list(specs)
    if not landing.is_dir():
        return []
    claimed = {str(PurePosixPath(*p.relative_to(landing).parts)) for s in specs for p in discover(s, landing)}
    claimed_under = {str(PurePosixPath(c).parent) for c in claimed}
    found = []
    for rel, kind in _entries(landing):
        if rel in claimed:
            continue
        if kind == "link" and any(c == rel or c.startswith(rel + "/") for c in claimed_under):
            continue  # a linked folder the loader reads feed files through
        found.append(Unclaimed(rel, kind, nearest_feed(rel, specs)))
    return sorted(found, key=lambda u: u.path)


def _entries(landing: Path) -> Iterable[tuple[str, str]]:
    """(path relative to ``landing``, kind) of every non-folder entry, depth first; names only."""
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(landing / rel if rel else landing) as it:
                entries = list(it)
        except OSError:
            yield rel, "unreadable folder"
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden: a partial upload, an OS's own files
            path = f"{rel}/{entry.name}" if rel else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                    continue
                mode = entry.stat(follow_symlinks=False).st_mode  # lstat: never opens the entry
            except OSError:
                mode = 0
            yield path, _kind(mode)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
        return "device"
    return "file"


def nearest_feed(rel: str, specs: list[FeedSpec]) -> FeedSpec | None:
    """The feed a path most likely meant: its agency folder read as a skeleton (case, look-alike
    letters, punctuation ignored), then the feed folder and file name against the pattern. A path
    whose first folder is no agency is also tried as if the agency folder were missing
    (``call_centre/x.psv``)."""
    parts = rel.split("/")
    readings = [(parts[0], parts[1:])] if len(parts) > 1 else []
    readings.append(("", parts))  # no agency folder
    best: tuple[float, FeedSpec] | None = None
    for spec in specs:
        for agency, rest in readings:
            score = (2 * _agency_score(agency, spec.agency) if agency else 0.0) + _feed_score(rest, spec.pattern)
            if best is None or score > best[0]:
                best = (score, spec)
    return best[1] if best else None


def _agency_score(folder: str, agency: str) -> float:
    if folder == agency:
        return 1.0
    a, b = skeleton(folder), skeleton(agency)
    return 0.95 if a == b else 0.9 * difflib.SequenceMatcher(None, a, b).ratio()


def _feed_score(rest: list[str], pattern: str) -> float:
    """Feed folder (twice the weight) and file name against the pattern's, any case."""
    folder, name = "/".join(rest[:-1]).casefold(), (rest[-1] if rest else "").casefold()
    p = PurePosixPath(pattern.casefold())
    p_folder = "" if str(p.parent) == "." else str(p.parent)
    folder_score = difflib.SequenceMatcher(None, folder, p_folder).ratio() if folder or p_folder else 1.0
    if fnmatchcase(name, p.name):
        name_score = 1.0
    else:
        suffix, p_suffix = "".join(PurePosixPath(name).suffixes), p.name.rpartition("*")[2]
        name_score = difflib.SequenceMatcher(None, suffix, p_suffix).ratio()
    return 2 * folder_score + name_score
