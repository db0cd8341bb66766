"""The delivery lifecycle as a state machine (issue 25): deliveries, re-deliveries, builds and
operator actions in any order, on a real DuckDB file and a real landing zone, checked against a
plain-Python model of what must be loaded.

Two agencies deliver contacts with the same record ids: SSA call_center (pipe-separated) and FSA
chat (comma-separated), each small hand-written files named for one of two months (``restates``,
the default: a new file replaces the earlier files' records of its period unless the guard parks
it). Each step writes files to the landing zone, builds (``load_files`` for every feed over
``discover``, as the ingest assets do), or acts as an operator (``deliveries.act``: hold, release,
purge, accept, reject). The model applies the documented rules (``lifecycle``, ``loader``,
``deliveries``) to the same steps: the guard's three shares, restates replacing a period, parked
deliveries changing nothing until accepted, rejected files changing nothing, held rows staying in
raw, purge removing a file's rows and letting it load again. After every step:

1. every loaded or held delivery accounts for every record written to it (rows in = loaded +
   quarantined + excluded = the records of its bytes; its raw and quarantine rows are those counts),
   and after a build every file of the landing zone has a log row that counts it as delivered;
2. raw.contacts holds exactly the records of the live (loaded) and held deliveries the model says,
   and the ingest log has exactly the model's rows (file, period, status, counts);
3. a step on one agency never changes another agency's rows (the build: one feed's load never
   changes the other agency's raw, quarantine or log rows);
4. after a build, ``clean_load.verify`` (a clean load of the landing zone with the operator
   decisions replayed) reports no difference whenever the model's clean load of the landing zone
   gives the same live and held deliveries as the model's warehouse, and reports one when it does
   not. They differ by design, and only then, when the warehouse's history is not in the landing
   zone any more or not in its order: bytes overwritten under the same name while the guard kept
   the old ones live (the clean load never saw them, so it has nothing to guard), or a copy of old
   bytes under a later name that a clean load reads after the file that replaced them.

Two example tests replay findings 4 and 6 of issue 25 step by step.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from dagster_project.ingest.clean_load import verify
from dagster_project.ingest.deliveries import Selector, act
from dagster_project.ingest.lifecycle import IN_RAW, SEEN, TRANSITIONS, Status
from dagster_project.ingest.loader import discover, ensure_tables, load_files
from dagster_project.warehouse import connect
from tests.ingest.conftest import SSA_CALL_HEADER, feed_spec

ACTOR = "operator:stateful"
PERIODS = ("2025-10", "2025-11")
AGENCIES = ("SSA", "FSA")
FSA_CHAT_HEADER = "session_id,started,queue,intent,borrower_key,queue_seconds,session_seconds,end_state"
# per agency: the feed, its folder and file name prefix, suffix, header and one record's text
FEEDS = {
    "SSA": (feed_spec("SSA", "call_center"), "SSA/call_center", "ssa_800_calls", "psv", SSA_CALL_HEADER),
    "FSA": (feed_spec("FSA", "chat"), "FSA/chat", "fsa_chat", "csv", FSA_CHAT_HEADER),
}
SPECS = [spec for spec, *_ in FEEDS.values()]
SHRINK = QUARANTINED = UNMATCHED = 0.5  # the feeds' review shares (registry ReviewGuard defaults)
assert all(
    (s.delivery, s.review.shrink, s.review.quarantined, s.review.unmatched) == ("restates", 0.5, 0.5, 0.5)
    for s in SPECS
)


# ---- the files ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """A delivery's bytes: records (number, month the record is dated in, whether its wait is
    unreadable) of one agency; ``version`` changes every field but the key (a corrected file)."""

    agency: str
    records: tuple[tuple[int, str, bool], ...]
    version: int

    def text(self) -> str:
        *_, header = FEEDS[self.agency]
        sep = "|" if self.agency == "SSA" else ","
        rows = [
            sep.join(
                [
                    record_id(i, month),
                    f"{month}-10 10:{i % 60:02d}:00",
                    "National 800" if self.agency == "SSA" else "chat",
                    "SSN_CARD" if self.agency == "SSA" else "FAFSA_HELP",
                    f"C{i}",
                    "x" if bad else "10",
                    str(60 + self.version),
                    "RESOLVED",
                ]
            )
            for i, month, bad in self.records
        ]
        return "\n".join([header, *rows]) + "\n"

    @property
    def data(self) -> bytes:
        return self.text().encode()

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def ids(self, period: str | None = None, *, good: bool | None = None) -> set[str]:
        return {
            record_id(i, m)
            for i, m, bad in self.records
            if (period is None or m == period) and (good is None or good != bad)
        }

    def bad(self) -> int:
        return sum(bad for *_, bad in self.records)


def record_id(i: int, month: str) -> str:
    """The same ids for both agencies: one agency's records must never meet the other's."""
    return f"K{month.replace('-', '')}{i:04d}"


# ---- the model ----------------------------------------------------------------------------------


@dataclass
class Row:
    """One row of raw.ingest_log as the model has it."""

    agency: str
    file: str  # as logged: relative to the landing zone
    period: str
    sha: str
    status: str
    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    by_operator: bool = False  # rejected on review (replayed by verify), not by ingest

    def key(self) -> tuple:
        return (self.agency, self.file, self.period, self.sha, self.status, self.rows_in, self.loaded, self.quarantined)


def named_period(file: str) -> str:
    return FEEDS[file.split("/")[0]][0].period_of(file.rsplit("/", 1)[-1])


def model_build(log: list[Row], landing: dict[str, Content], contents: dict[str, Content], agency: str) -> None:
    """What ``load_files`` does with the agency's files of the landing zone, in landing-zone order."""
    seen = {r.sha for r in log if r.agency == agency and r.status in SEEN}
    accepted = {r.sha for r in log if r.agency == agency and r.status == Status.ACCEPTED} - seen
    for file in sorted(f for f in landing if f.startswith(agency + "/")):
        content = landing[file]
        sha, period = content.sha, named_period(file)
        if sha in seen:  # the same bytes again (a copy, or a file seen before): skipped, not logged
            continue
        seen.add(sha)
        n = len(content.records)
        outside = sum(m != period for _, m, _ in content.records)
        assert outside in (0, n), "the machine writes a file's records in one month"
        if outside * 2 > n:  # most records of another month than the name's: refused whole
            log.append(Row(agency, file, period, sha, Status.REJECTED))
            continue
        good = content.ids(period, good=True)
        live = [r for r in log if (r.agency, r.period) == (agency, period) and r.status in IN_RAW and r.sha != sha]
        before = sum(r.loaded for r in live)
        if before and sha not in accepted:  # the guard (delivery_effects.guard), from the counts
            held_ids = set().union(*(contents[r.sha].ids(period, good=True) for r in live))
            gone = len(held_ids - content.ids(period))
            if len(good) < before * (1 - SHRINK) or content.bad() > n * QUARANTINED or gone > before * UNMATCHED:
                log.append(Row(agency, file, period, sha, Status.AWAITING_REVIEW))
                continue
        for r in log:  # restates: the earlier deliveries of the period are replaced
            replaced = (Status.LOADED, Status.HELD, Status.AWAITING_REVIEW)
            if (r.agency, r.period) == (agency, period) and r.status in replaced and r.sha != sha:
                r.status = Status.SUPERSEDED
        log.append(Row(agency, file, period, sha, Status.LOADED, n, len(good), content.bad()))


def model_act(log: list[Row], action: str, matches) -> None:
    """What ``deliveries.act`` does to the log rows the selector ``matches``."""
    matched = [r for r in log if matches(r)]
    assert matched, "the machine only acts on what is logged"
    from_statuses, to_status = TRANSITIONS[action]
    if action != "purge":
        for r in matched:
            if r.status in from_statuses:
                r.status = to_status
                r.by_operator = action == "reject"
        return
    files = {(r.sha, r.agency) for r in matched}
    rows = [r for r in log if (r.sha, r.agency) in files]  # purge takes the whole file
    changed = [
        r
        for r in rows
        if r.status in from_statuses
        or (
            r.status == Status.SUPERSEDED
            # a superseded month stays superseded while a delivery outside the purge holds it
            and not any(
                (o.agency, o.period) == (r.agency, r.period)
                and o.status in IN_RAW
                and o.sha != r.sha
                and (o.sha, o.agency) not in files
                for o in log
            )
        )
    ]
    for r in changed:
        r.status = Status.PURGED


def model_clean_load(log: list[Row], landing: dict[str, Content], contents: dict[str, Content]) -> list[Row]:
    """What ``clean_load.clean_load`` gives: review decisions replayed, every file loaded, holds applied."""
    clean = [replace(r) for r in log if r.status == Status.ACCEPTED or (r.status == Status.REJECTED and r.by_operator)]
    for agency in AGENCIES:
        model_build(clean, landing, contents, agency)
    held = {(r.sha, r.agency, r.period) for r in log if r.status == Status.HELD}
    for r in clean:
        if r.status == Status.LOADED and (r.sha, r.agency, r.period) in held:
            r.status = Status.HELD
    return clean


def in_raw(log: list[Row]) -> Counter:
    return Counter(r.key() for r in log if r.status in IN_RAW)


# ---- the machine --------------------------------------------------------------------------------

AGENCY = st.sampled_from(AGENCIES)
PERIOD = st.sampled_from(PERIODS)


class DeliveryLifecycle(RuleBasedStateMachine):
    base: Path | None = None  # where each example makes its folder (the test's tmp_path)

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="cxw-lifecycle-", dir=self.base))
        self.landing_dir = self.tmp / "landing"
        self.landing_dir.mkdir()
        os.environ["CXW_LANDING_DIR"] = str(self.landing_dir)  # what purge tells about (paths().landing)
        self.con = connect(self.tmp / "w.duckdb")
        ensure_tables(self.con)
        self.landing: dict[str, Content] = {}  # file -> its bytes now
        self.contents: dict[str, Content] = {}  # sha256 -> bytes ever written
        self.log: list[Row] = []
        self.seq = 0  # file names
        self.versions = 0  # contents: every write but a copy is new bytes
        self.builds = 0
        self.verified: tuple | None = None  # the state verify last matched against

    def teardown(self) -> None:
        self.con.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers

    def _write(self, file: str, content: Content) -> None:
        path = self.landing_dir / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.data)
        self.landing[file] = content
        self.contents[content.sha] = content

    def _version(self) -> int:
        self.versions += 1
        return self.versions

    def _new_name(self, agency: str, period: str) -> str:
        self.seq += 1
        _, folder, prefix, suffix, _ = FEEDS[agency]
        return f"{folder}/{prefix}_{period}_{self.seq:03d}.{suffix}"  # in delivery order within a month

    def _deliver(self, agency: str, period: str, numbers: list[int], bad: set[int], build: bool) -> None:
        content = Content(agency, tuple((i, period, i in bad) for i in numbers), self._version())
        self._write(self._new_name(agency, period), content)
        if build:
            self.build()

    def _live_numbers(self, agency: str, period: str) -> list[int]:
        """The record numbers loaded or held now for the period (the records a re-delivery restates)."""
        ids = set()
        for r in self.log:
            if (r.agency, r.period) == (agency, period) and r.status in IN_RAW:
                ids |= {i for i, m, bad in self.contents[r.sha].records if m == period and not bad}
        return sorted(ids)

    def _others(self, agency: str) -> dict[str, list]:
        """Every row of the other agencies: raw, quarantine and log."""
        out = {}
        for table in ("raw.contacts", "quarantine.rejected_rows", "quarantine.rejected_files", "raw.ingest_log"):
            out[table] = self.con.execute(
                f"select * from {table} where agency_code <> ? order by all", [agency]
            ).fetchall()
        return out

    def _act(self, action: str, selector: Selector, matches, agency: str) -> None:
        others = self._others(agency)
        act(self.con, action, selector, f"stateful {action}", ACTOR)
        model_act(self.log, action, matches)
        assert self._others(agency) == others, f"{action} {selector} changed another agency's rows"

    # -- deliveries

    @rule(
        agency=AGENCY,
        period=PERIOD,
        n=st.integers(1, 8),
        first=st.integers(0, 4),
        bad=st.integers(0, 2),
        build=st.booleans(),
    )
    def new_file(self, agency, period, n, first, bad, build):
        numbers = list(range(first, first + n))
        self._deliver(agency, period, numbers, set(numbers[:bad]), build)

    @rule(agency=AGENCY, period=PERIOD, more=st.integers(1, 4), build=st.booleans())
    def redeliver_larger(self, agency, period, more, build):
        numbers = self._live_numbers(agency, period)
        top = max(numbers, default=-1) + 1
        self._deliver(agency, period, numbers + list(range(top, top + more)), set(), build)

    @rule(agency=AGENCY, period=PERIOD, build=st.booleans())
    def redeliver_sharply_smaller(self, agency, period, build):
        numbers = self._live_numbers(agency, period) or list(range(6))
        self._deliver(agency, period, numbers[: max(1, len(numbers) // 3)], set(), build)

    @rule(agency=AGENCY, period=PERIOD, build=st.booleans())
    def redeliver_mostly_bad(self, agency, period, build):
        numbers = self._live_numbers(agency, period) or list(range(4))
        self._deliver(agency, period, numbers, set(numbers[: len(numbers) // 2 + 1]), build)

    @rule(
        agency=AGENCY,
        period=PERIOD,
        other=PERIOD,
        n=st.integers(1, 5),
        build=st.booleans(),
    )
    def another_periods_records_under_this_name(self, agency, period, other, n, build):
        if other == period:
            other = next(p for p in PERIODS if p != period)
        content = Content(agency, tuple((i, other, False) for i in range(n)), self._version())
        self._write(self._new_name(agency, period), content)
        if build:
            self.build()

    @precondition(lambda self: self.landing)
    @rule(data=st.data(), variant=st.sampled_from(["fixed", "larger", "smaller", "bad"]), build=st.booleans())
    def overwrite_same_name(self, data, variant, build):
        """New bytes under a file name already delivered: the old bytes are gone from the landing zone."""
        file = data.draw(st.sampled_from(sorted(self.landing)), label="file")
        old = self.landing[file]
        period = named_period(file)
        numbers = sorted({i for i, *_ in old.records})
        if variant == "larger":
            numbers += [max(numbers) + 1 + k for k in range(3)]
        elif variant == "smaller":
            numbers = numbers[: max(1, len(numbers) // 3)]
        bad = set(numbers[: len(numbers) // 2 + 1]) if variant == "bad" else set()
        self._write(file, Content(old.agency, tuple((i, period, i in bad) for i in numbers), self._version()))
        if build:
            self.build()

    @precondition(lambda self: self.landing)
    @rule(data=st.data(), build=st.booleans())
    def identical_bytes_under_another_name(self, data, build):
        file = data.draw(st.sampled_from(sorted(self.landing)), label="file")
        content = self.landing[file]
        self._write(self._new_name(content.agency, named_period(file)), content)
        if build:
            self.build()

    # -- the build

    @rule()
    def build(self):
        self.builds += 1
        run = f"run-{self.builds}"
        for agency, (spec, *_) in FEEDS.items():
            others = self._others(agency)
            load_files(self.con, spec, discover(spec, self.landing_dir), self.landing_dir, run)
            model_build(self.log, self.landing, self.contents, agency)
            assert self._others(agency) == others, f"loading {agency} changed another agency's rows"
        self._check_log_and_raw()
        # every file of the landing zone is counted as delivered (loaded, held, rejected, superseded, parked)
        logged = {
            sha
            for (sha,) in self.con.execute(
                f"select file_sha256 from raw.ingest_log where status in ({', '.join(repr(str(s)) for s in SEEN)})"
            ).fetchall()
        }
        assert {c.sha for c in self.landing.values()} <= logged
        self._check_clean_load()

    def _check_clean_load(self) -> None:
        """4. verify reports no difference when the model's clean load of the landing zone gives the
        same live and held deliveries as the model's warehouse, and one when it does not."""
        state = (tuple(sorted((f, c.sha) for f, c in self.landing.items())), tuple(r.key() for r in self.log))
        if state == self.verified:
            return  # nothing changed since the last verify (a build that loaded nothing)
        self.verified = state
        found = verify(self.con, self.landing_dir, self.tmp, specs=SPECS)
        clean = model_clean_load(self.log, self.landing, self.contents)
        if in_raw(clean) == in_raw(self.log):
            assert found.matches, "\n".join(found.differences)
        else:
            assert not found.matches, "verify did not see that the warehouse differs from a clean load"

    # -- operators

    def _rows(self, *statuses: str) -> list[Row]:
        return [r for r in self.log if r.status in statuses]

    @precondition(lambda self: self._rows(Status.LOADED))
    @rule(data=st.data(), by_file=st.booleans())
    def hold(self, data, by_file):
        self._hold_or_release(data, by_file, "hold", Status.LOADED)

    @precondition(lambda self: self._rows(Status.HELD))
    @rule(data=st.data(), by_file=st.booleans())
    def release(self, data, by_file):
        self._hold_or_release(data, by_file, "release", Status.HELD)

    def _hold_or_release(self, data, by_file: bool, action: str, status: str) -> None:
        row = data.draw(st.sampled_from(self._rows(status)), label="delivery")
        if by_file:
            self._act(action, Selector(file=row.file), lambda r: r.file == row.file, row.agency)
        else:
            self._act(
                action,
                Selector(agency=row.agency, period=row.period),
                lambda r: (r.agency, r.period) == (row.agency, row.period),
                row.agency,
            )

    @precondition(lambda self: self.log)
    @rule(data=st.data())
    def purge(self, data):
        file = data.draw(st.sampled_from(sorted({r.file for r in self.log})), label="file")
        self._act("purge", Selector(file=file), lambda r: r.file == file, file.split("/")[0])

    @precondition(lambda self: self._rows(Status.AWAITING_REVIEW))
    @rule(data=st.data(), accept=st.booleans())
    def review(self, data, accept):
        row = data.draw(st.sampled_from(self._rows(Status.AWAITING_REVIEW)), label="delivery")
        action = "accept" if accept else "reject"
        self._act(action, Selector(file=row.file), lambda r: r.file == row.file, row.agency)

    # -- invariants

    def _check_log_and_raw(self) -> None:
        # 2. the ingest log has exactly the model's rows; raw.contacts the records of its live and held deliveries
        log = Counter(
            self.con.execute(
                "select agency_code, source_file, period, file_sha256, status, rows_in, rows_loaded, rows_quarantined"
                " from raw.ingest_log"
            ).fetchall()
        )
        assert log == Counter(r.key() for r in self.log)
        raw = Counter(
            self.con.execute(
                "select agency_code, _source_file, _period, _file_sha256, contact_id from raw.contacts"
            ).fetchall()
        )
        expected = Counter(
            (r.agency, r.file, r.period, r.sha, i)
            for r in self.log
            if r.status in IN_RAW
            for i in self.contents[r.sha].ids(r.period, good=True)
        )
        assert raw == expected
        live = {
            (a, p, i)
            for a, p, i in self.con.execute(
                "select c.agency_code, c._period, c.contact_id from raw.contacts as c join raw.ingest_log as l"
                " on l.file_sha256 = c._file_sha256 and l.agency_code = c.agency_code and l.period = c._period"
                " where l.status = 'loaded'"
            ).fetchall()
        }
        assert live == {
            (r.agency, r.period, i)
            for r in self.log
            if r.status == Status.LOADED
            for i in self.contents[r.sha].ids(r.period, good=True)
        }

    @invariant()
    def every_record_is_accounted_for(self):
        # 1. per loaded or held delivery: rows in = loaded + quarantined + excluded = the records written,
        # and its raw and quarantine rows are those counts
        for (
            agency,
            file,
            period,
            sha,
            rows_in,
            loaded,
            quarantined,
            excluded,
            in_raw_,
            in_quarantine,
        ) in self.con.execute(
            """select agency_code, source_file, period, file_sha256, rows_in, rows_loaded, rows_quarantined,
                      rows_excluded,
                      (select count(*) from raw.contacts as c where c._file_sha256 = l.file_sha256
                         and c.agency_code = l.agency_code and c._period = l.period),
                      (select count(*) from quarantine.rejected_rows as q where q.file_sha256 = l.file_sha256
                         and q.agency_code = l.agency_code and q.period = l.period)
               from raw.ingest_log as l where status in ('loaded', 'held')"""
        ).fetchall():
            written = len([m for _, m, _ in self.contents[sha].records if m == period])
            assert rows_in == loaded + quarantined + excluded == written, (agency, file, period)
            assert (in_raw_, in_quarantine) == (loaded, quarantined), (agency, file, period)

    @invariant()
    def the_warehouse_is_the_model(self):
        self._check_log_and_raw()


# 10 x 12 steps take about a minute on 2 busy cores (a build with verify takes 1-2 s); more with
# CXW_STATEFUL_EXAMPLES / CXW_STATEFUL_STEPS. Shrinking a failure can take Hypothesis's full five
# minutes at these step costs, so it is off unless CXW_STATEFUL_SHRINK=1: a failure prints its
# sequence unshrunk (at most STEPS steps).
EXAMPLES = int(os.environ.get("CXW_STATEFUL_EXAMPLES", "10"))
STEPS = int(os.environ.get("CXW_STATEFUL_STEPS", "12"))
PHASES = tuple(Phase) if os.environ.get("CXW_STATEFUL_SHRINK") == "1" else (Phase.explicit, Phase.reuse, Phase.generate)


def test_the_delivery_lifecycle_keeps_every_record_and_a_clean_load_reachable(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_LANDING_DIR", "unset")  # each example points it at its own landing zone
    monkeypatch.setattr(DeliveryLifecycle, "base", tmp_path)
    run_state_machine_as_test(
        DeliveryLifecycle,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            phases=PHASES,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


# ---- issue 25, findings 4 and 6, step by step -----------------------------------------------------


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch):
    landing = tmp_path / "landing"
    landing.mkdir()
    monkeypatch.setenv("CXW_LANDING_DIR", str(landing))
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    yield con, landing
    con.close()


def _statuses(con, agency: str = "SSA") -> list[tuple]:
    return con.execute(
        "select source_file, period, status, rows_in, rows_loaded, rows_quarantined from raw.ingest_log"
        " where agency_code = ? order by source_file, period, loaded_at",
        [agency],
    ).fetchall()


def _contacts(con) -> list[tuple]:
    return con.execute("select _source_file, _period, count(*) from raw.contacts group by all order by all").fetchall()


def test_finding_4_a_corrected_file_under_the_same_name_leaves_the_warehouse_a_clean_load(warehouse, tmp_path):
    """A file with one bad record is loaded; its corrected version comes under the same name (the
    old bytes are gone from the landing zone); the next build loads it, and the warehouse equals a
    clean load of the landing zone with nothing stuck (nothing held or awaiting review, the next
    build has nothing to do)."""
    con, landing = warehouse
    spec, folder, *_ = FEEDS["SSA"]
    name = f"{folder}/ssa_800_calls_2025-10.psv"
    path = landing / name
    path.parent.mkdir(parents=True)
    first = Content("SSA", tuple((i, "2025-10", i == 3) for i in range(10)), 1)
    path.write_bytes(first.data)
    (out,) = load_files(con, spec, discover(spec, landing), landing, "run-1")
    assert (out.status, out.rows_loaded, out.rows_quarantined) == ("loaded", 9, 1)

    corrected = replace(first, records=tuple((i, m, False) for i, m, _ in first.records))
    path.write_bytes(corrected.data)
    (out,) = load_files(con, spec, discover(spec, landing), landing, "run-2")
    assert (out.status, out.rows_loaded, out.rows_quarantined, out.replaced) == ("loaded", 10, 0, (name,))
    assert _statuses(con) == [(name, "2025-10", "superseded", 10, 9, 1), (name, "2025-10", "loaded", 10, 10, 0)]
    assert _contacts(con) == [(name, "2025-10", 10)]

    # nothing stuck: nothing waits for anyone, and the next build has nothing to do
    stuck = con.execute("select count(*) from raw.ingest_log where status in ('held', 'awaiting_review')").fetchone()
    assert stuck == (0,)
    (again,) = load_files(con, spec, discover(spec, landing), landing, "run-3")
    assert again.status == "skipped"
    found = verify(con, landing, tmp_path, specs=[spec])
    assert found.matches, "\n".join(found.differences)


RECORDS_SPEC = feed_spec("SSA", "call_center", period_from="records", pattern="exports/*.psv")


def test_finding_6_purging_a_file_with_a_superseded_month_loses_nothing_of_the_other_months(warehouse, tmp_path):
    """An export spanning January and February whose February a later file corrected, and March in a
    file of its own. Purging the export takes its January out and nothing else (the correction's
    February and March stay, through the purge and the next build); the export still counts as
    delivered while its correction stays (deliveries.py: loading it again would put it over the
    correction), so the one difference from a clean load is its January. Purged together with its
    correction, the next build gives exactly a clean load."""
    con, landing = warehouse
    folder = landing / "SSA" / "exports"
    folder.mkdir(parents=True)

    def write(name: str, months: dict[str, int], version: int = 1) -> str:
        records = tuple((i, m, False) for m, n in months.items() for i in range(n))
        (folder / name).write_bytes(Content("SSA", records, version).data)
        return f"SSA/exports/{name}"

    def build(run: str) -> None:
        load_files(con, RECORDS_SPEC, discover(RECORDS_SPEC, landing), landing, run)

    def clean() -> list[str]:
        return verify(con, landing, tmp_path, specs=[RECORDS_SPEC]).differences

    export = write("calls_export.psv", {"2025-01": 4, "2025-02": 4})
    march = write("march.psv", {"2025-03": 5})
    build("run-1")
    correction = write("february_fixed.psv", {"2025-02": 4}, version=2)
    build("run-2")
    assert _contacts(con) == [(export, "2025-01", 4), (correction, "2025-02", 4), (march, "2025-03", 5)]
    assert not clean()

    act(con, "purge", Selector(file=export), "export mapped wrong", ACTOR)
    after_purge = [(correction, "2025-02", 4), (march, "2025-03", 5)]
    assert _contacts(con) == after_purge
    build("run-3")
    assert _contacts(con) == after_purge
    assert clean() == [
        f"raw.contacts SSA call_center 2025-01 {export}: 4 row(s) of a clean load missing",
        f"raw.ingest_log SSA call_center 2025-01 {export}: only a clean load has it loaded"
        " (rows in 4, loaded 4, quarantined 0, excluded 0)",
    ]

    act(con, "purge", Selector(file=correction), "reload February in order", ACTOR)
    act(con, "purge", Selector(file=export), "reload the export", ACTOR)
    assert _contacts(con) == [(march, "2025-03", 5)]
    build("run-4")
    assert _contacts(con) == [(export, "2025-01", 4), (correction, "2025-02", 4), (march, "2025-03", 5)]
    assert not clean()
