"""What the loader passes between its stages: a ``DeliveredFile`` (who sent what), a
``StagedFile`` (read into its own temp tables), a ``Batch`` (the files loaded together and the
temp tables between its stages), the ``Counts`` of a file and the ``FileOutcome`` each file ends
with. Shared by ``loader.py``, which runs the stages, and ``delivery_effects.py``, which decides
what a delivery does to what its feed holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import duckdb

from dagster_project.ingest.checks import TYPED
from dagster_project.ingest.readers import Read, ReadTables
from dagster_project.registry import FeedSpec


@dataclass(frozen=True)
class FileOutcome:
    agency: str
    feed: str
    kind: str
    file: str
    sha256: str
    status: str  # loaded | skipped (same bytes already seen) | rejected (whole file) | awaiting_review (lifecycle)
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_excluded: int = 0  # left out by the feed's exclude rules
    excluded_by: str = ""  # 'rule: n; rule: n'
    reason: str = ""
    period: str | None = None  # the latest period the file holds
    replaced: tuple[str, ...] = ()  # files of the same period whose rows this one replaced
    periods: tuple[str, ...] = ()  # every period the file holds (one unless period_from: records)
    encoding: str = ""  # what the file was read with (encoding: auto decides per file)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DeliveredFile:
    """Who delivered a file and what it is: every FileOutcome and ingest-log row of it starts from these."""

    agency: str
    feed: str
    kind: str
    file: str  # as logged: relative to the landing zone
    sha256: str
    period: str | None  # the latest delivery period it holds (None until told)

    @classmethod
    def of(cls, spec: FeedSpec, rel: str, sha: str, path: Path) -> DeliveredFile:
        return cls(spec.agency, spec.name, spec.kind, rel, sha, spec.period_of(path.name))

    def outcome(self, status: str, **fields) -> FileOutcome:
        return FileOutcome(**asdict(self), status=status, **fields)


@dataclass(frozen=True)
class Counts:
    """Records of a file or of one of its periods: in = loaded + quarantined + excluded, each counted on its own."""

    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    excluded: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.rows_in + other.rows_in,
            self.loaded + other.loaded,
            self.quarantined + other.quarantined,
            self.excluded + other.excluded,
        )


# ---- a batch of files of one feed ------------------------------------------------------------

# A batch is checked and loaded by one set of statements: DuckDB plans the ~30 row checks of a
# feed once per batch instead of once per file (planning, not reading, was most of the cost of a
# small file). A batch never holds two files of the same period (the later one replaces the
# earlier, in order) and is cut at this many records to bound memory.
BATCH_ROWS = 2_000_000


@dataclass(frozen=True)
class StagedFile:
    """A delivery read into its own temp tables (``tables``), waiting for its batch."""

    n: int  # its place in the call's list of paths
    delivered: DeliveredFile
    tables: ReadTables
    read: Read  # the UTF-8 CSV read (for line numbers), the file's columns, encoding, records counted in the file
    rows_read: int
    reader_rejects: int
    periods: list[str]  # the delivery periods its records fall in (one unless period_from: records)
    accepted: bool = False  # an operator accepted it on review (cxw deliveries accept): the guard does not apply


@dataclass
class Batch:
    """Files of one feed loaded by one set of statements, and the temp tables the statements pass on:
    every file's records as text (``records_table``), each file's lineage (``files_table``), and the
    records typed and checked (``typed_table``, named as the checks read it)."""

    spec: FeedSpec
    run_id: str
    staged: list[StagedFile] = field(default_factory=list)
    # (file, period) -> the feed's records of the period in raw before the batch (loaded, held): rows_before
    before: dict[tuple[int, str], int] = field(default_factory=dict)
    # (file, period) -> the file's records of that period that would load (kept when a parked file's batch rolls back)
    would: dict[tuple[int, str], int] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)  # file -> what its log's reason adds (records outside)

    records_table: ClassVar[str] = "batch_src"
    files_table: ClassVar[str] = "batch_files"
    typed_table: ClassVar[str] = TYPED

    def takes(self, s: StagedFile) -> bool:
        """Whether the file joins this batch: not when it would pass BATCH_ROWS or shares a period with a
        file in it (nor ever for a snapshot feed, each file replacing all the feed holds, or a feed
        with corrections, a later file's record replacing an earlier one's: one at a time, in order)."""
        if not self.staged:
            return True
        if self.spec.delivery == "snapshot" or self.spec.corrections:
            return False
        full = sum(t.rows_read for t in self.staged) + s.rows_read > BATCH_ROWS
        return not (full or any(set(t.periods) & set(s.periods) for t in self.staged))

    def of_one(self, s: StagedFile) -> Batch:
        return Batch(self.spec, self.run_id, [s])

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        for s in self.staged:
            s.tables.drop(con)
        con.execute(
            f"drop table if exists {self.records_table}; drop table if exists {self.files_table};"
            f" drop table if exists {self.typed_table}"
        )
