"""Publish per agency: ``published/agencies/<AGENCY>/cx_<AGENCY>.duckdb`` and one Parquet per mart
and fact table, holding only that agency's rows.

The government-wide snapshot (snapshot.py) has dims and aggregated marts only. An agency's
analysts also need their own row-level facts (``marts.fct_*``: comments already redacted, customer
keys pseudonymised at ingest, and keyed again per agency here so that no key joins across two
agencies' slices), and must not see another agency's rows. So a slice holds:

* every table (dim, mart, fact) with an ``agency_code`` column: that agency's rows only;
* dims without ``agency_code`` (dates, channels, outcomes ...): whole, they are reference data;
* marts without ``agency_code``: whole, as government-wide benchmarks (the same rows every
  agency and the public snapshot get);
* facts without ``agency_code``: left out (row level, and they cannot be cut by agency).

Each file is written under a temporary name and swapped in with ``os.replace``, in the same
storage format as the government-wide snapshot (DuckDB 1.x readers open it). A slice is written
again only when its content changed: its fingerprint (publish/fingerprints.py) is kept in its
``publish_manifest`` and compared on the next publish. One agency's delivery rewrites its own
slice (and the others' only when a table they share, or their benchmark rows, changed); a
build that changes nothing rewrites none. An agency that no longer has rows (its deliveries
purged) loses its folder: a stale slice would keep publishing data that was taken out of the
warehouse.
"""

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.config import duckdb_settings, paths
from dagster_project.contracts import CONTRACTS
from dagster_project.ingest.personal_data import PII_LIKE, SHOWN_MAX
from dagster_project.ingest.pseudonyms import pseudonym_sql
from dagster_project.publish.fingerprints import Table, agency_fingerprints
from dagster_project.publish.snapshot import PUBLISHED_SCHEMA, _copy_comments, attach_compatible, published_models
from dagster_project.registry import AGENCY_CODE
from dagster_project.resources import WarehouseResource
from dagster_project.warehouse import ident, lit

SLICE_PREFIXES = ("dim_", "mart_", "fct_")
AGENCIES_DIR = "agencies"


def slice_path(published_dir: Path, agency: str) -> Path:
    return published_dir / AGENCIES_DIR / agency / f"cx_{agency}.duckdb"


@dataclass(frozen=True)
class SlicesPublished:
    rows: dict[str, dict[str, int]]  # every published slice: {agency: {table: rows}}
    written: list[str]  # the agencies whose slice this publish wrote (the others were unchanged)


def publish_agency_slices(warehouse: Path, published_dir: Path, run_id: str) -> SlicesPublished:
    """Write every agency's slice whose content changed, and remove those of agencies without rows."""
    root = published_dir / AGENCIES_DIR
    root.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:", config=duckdb_settings())
    try:
        con.execute(f"attach {lit(str(warehouse))} as working (read_only)")
        tables = con.execute(
            "select t.table_name, bool_or(c.column_name = 'agency_code') from duckdb_tables() t"
            " join duckdb_columns() c using (database_name, schema_name, table_name)"
            " where t.database_name = 'working' and t.schema_name = ? group by 1 order by 1",
            [PUBLISHED_SCHEMA],
        ).fetchall()
        tables = [
            (name, by_agency)
            for name, by_agency in tables
            if name.startswith(SLICE_PREFIXES) and (by_agency or not name.startswith("fct_"))
        ]
        agencies = _agencies(con, [name for name, by_agency in tables if by_agency])
        fingerprints = agency_fingerprints(
            con,
            [Table(f"working.{PUBLISHED_SCHEMA}.{name}", _columns(con, name), by_agency) for name, by_agency in tables],
            agencies,
        )
        counts, written = {}, []
        for agency in agencies:
            counts[agency] = _published_counts(slice_path(published_dir, agency), fingerprints[agency])
            if counts[agency] is None:
                counts[agency] = _write_slice(con, published_dir, agency, tables, run_id, fingerprints[agency])
                written.append(agency)
        con.execute("detach working")
    finally:
        con.close()
    for stale in root.iterdir():
        if stale.is_dir() and re.fullmatch(AGENCY_CODE, stale.name) and stale.name not in counts:
            gone = root / f".{stale.name}.{run_id}.removed"
            os.replace(stale, gone)  # readers of the folder never see it half removed
            shutil.rmtree(gone)
    return SlicesPublished(counts, written)


def _agencies(con, tables: list[str]) -> list[str]:
    """The agencies with rows in any sliced table: from the data, each checked against the
    registry's pattern (it becomes a folder name)."""
    if not tables:
        return []
    union = " union ".join(f"select agency_code from working.{PUBLISHED_SCHEMA}.{t}" for t in tables)
    found = [
        a
        for (a,) in con.execute(
            f"select distinct agency_code from ({union}) where agency_code is not null order by 1"
        ).fetchall()
    ]
    bad = [a for a in found if not re.fullmatch(AGENCY_CODE, a)]
    if bad:
        raise ValueError(f"agency codes that cannot name a slice folder: {bad!r} (pattern {AGENCY_CODE})")
    return found


def _published_counts(target: Path, fingerprint: str) -> dict[str, int] | None:
    """The rows per table of the slice at ``target`` when it was written from the same content, else None."""
    if not target.exists():
        return None
    try:
        with duckdb.connect(str(target), read_only=True, config=duckdb_settings()) as con:
            found = con.execute("select fingerprint, table_rows from main.publish_manifest").fetchone()
    except duckdb.Error:  # a slice written before fingerprints, or unreadable: write it again
        return None
    return json.loads(found[1]) if found and found[0] == fingerprint else None


def _write_slice(
    con, published_dir: Path, agency: str, tables: list[tuple[str, bool]], run_id: str, fingerprint: str
) -> dict[str, int]:
    target = slice_path(published_dir, agency)
    parquet = target.parent / "parquet"
    parquet.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{run_id}.tmp"
    tmp.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    attach_compatible(con, tmp)
    try:
        con.execute(f"create schema pub.{PUBLISHED_SCHEMA}")
        for name, by_agency in tables:
            where = " where agency_code = $agency" if by_agency else ""
            con.execute(
                f"create table pub.{PUBLISHED_SCHEMA}.{name} as select {_columns(con, name)}"
                f" from working.{PUBLISHED_SCHEMA}.{name}{where}",
                {"agency": agency} if by_agency else None,
            )
            _copy_comments(con, name, target_db="pub")
            counts[name] = con.execute(f"select count(*) from pub.{PUBLISHED_SCHEMA}.{name}").fetchone()[0]
            if name.startswith(("mart_", "fct_")):
                part = parquet / f".{name}.{run_id}.parquet.tmp"
                con.execute(f"copy pub.{PUBLISHED_SCHEMA}.{name} to {lit(str(part))} (format parquet)")
                os.replace(part, parquet / f"{name}.parquet")
        con.execute(
            "create table pub.main.publish_manifest as select ? as run_id, ? as published_at, ? as agency_code,"
            " ? as tables, ? as table_rows, ? as fingerprint",
            [run_id, datetime.now(UTC).replace(tzinfo=None), agency, ",".join(counts), json.dumps(counts), fingerprint],
        )
        con.execute("checkpoint pub")
    finally:
        con.execute("detach pub")
    for old in parquet.glob("*.parquet"):  # a table no longer sliced leaves no stale file
        if old.stem not in counts:
            old.unlink()
    os.replace(tmp, target)
    return counts


# A fact's source_* columns keep the value as delivered (an outcome word no synonym maps, say), which
# is not a closed vocabulary: it may be anything, personal data included (an SSN sent as an outcome
# loads, is warned about, and stays in the working warehouse). A slice shows it as ingest reasons do:
# a short value that looks like no personal data as it is, anything else as null.
DELIVERED_TEXT = re.compile(r"^source_(?!file$|row_number$)")


# A customer pseudonym (contracts: pseudonymised) is published per agency: keyed again with the
# row's agency, so one caller's key in FSA's slice cannot be joined to the same caller's in SSA's.
# Equal within an agency, so repeat contacts (computed in the warehouse, before this) still read true.
PSEUDONYMISED = {name for c in CONTRACTS.values() for name, col in c.columns.items() if col.pseudonymised}


def _columns(con, table: str) -> str:
    columns = con.execute(
        "select column_name, data_type from duckdb_columns() where database_name = 'working' and schema_name = ?"
        " and table_name = ? order by column_index",
        [PUBLISHED_SCHEMA, table],
    ).fetchall()
    names = {c for c, _ in columns}

    def published(c: str, t: str) -> str:
        if table.startswith("fct_") and DELIVERED_TEXT.match(c) and t == "VARCHAR":
            return (
                f"case when length({ident(c)}) <= {SHOWN_MAX} and not regexp_matches({ident(c)}, {lit(PII_LIKE)})"
                f" then {ident(c)} end as {ident(c)}"
            )
        if c in PSEUDONYMISED and "agency_code" in names:
            return f"{pseudonym_sql(f'agency_code || {lit(chr(31))} || {ident(c)}')} as {ident(c)}"
        return ident(c)

    return ", ".join(published(c, t) for c, t in columns)


@dg.asset(
    key=["published", "agency_slices"],
    group_name="publish",
    kinds={"duckdb", "parquet"},
    deps=published_models(SLICE_PREFIXES),
    description="Per agency: a DuckDB file and Parquet with that agency's rows of every mart and fact "
    "(government-wide dims and benchmark marts whole), for the agency's own analysts.",
)
def agency_slices(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    published = paths().published_dir
    published_slices = publish_agency_slices(warehouse.path, published, context.run_id)
    counts = published_slices.rows
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(published / AGENCIES_DIR)),
            "agencies": dg.MetadataValue.json(sorted(counts)),
            "written": dg.MetadataValue.json(published_slices.written),  # the rest were unchanged
            "rows": dg.MetadataValue.json({a: sum(c.values()) for a, c in counts.items()}),
            "tables": dg.MetadataValue.json(counts),
        }
    )
