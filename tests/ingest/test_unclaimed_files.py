"""Files no feed claims are said out loud (issue 25, finding 8): a look-alike agency folder (``SSА``
with a Cyrillic A), ``ssa/``, ``call_centre/``, a sub-folder, ``.PSV``, a ``.psv.gz`` in a ``.psv``
feed, a FIFO and a name with a newline and an ANSI escape are each listed with the feed they most
likely meant, by ``make run``'s summary and on the audit pages, their names escaped; listing them
never opens a file, so the FIFO cannot block it.

On the code before: ``dagster_project.ingest.landing`` did not exist, and the summary and the audit
pages had no word of any of these files (the run printed ``result: OK`` and nothing else).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
from pathlib import Path

import pytest

from dagster_project.ingest.landing import unclaimed_files
from dagster_project.ingest.personal_data import shown_name
from dagster_project.registry import load_registry
from tests.conftest import copy_data_dir

EVIL = "evil\nresult: OK\x1b[31m.txt"  # would forge a summary line and colour the console
# path relative to the landing zone -> the nearest feed expected ("agency pattern")
HOSTILE = {
    "SS\u0410/call_center/ssa_800_calls_2025-07.psv": "SSA call_center/*.psv",  # Cyrillic A
    "ssa/call_center/ssa_800_calls_2025-07.psv": "SSA call_center/*.psv",
    "SSA/call_centre/ssa_800_calls_2025-07.psv": "SSA call_center/*.psv",
    "call_centre/ssa_800_calls_2025-07.psv": "SSA call_center/*.psv",  # no agency folder at all
    "SSA/call_center/2025/ssa_800_calls_2025-07.psv": "SSA call_center/*.psv",  # a sub-folder
    "SSA/call_center/ssa_800_calls_2025-08.PSV": "SSA call_center/*.psv",
    "SSA/call_center/ssa_800_calls_2025-09.psv.gz": "SSA call_center/*.psv",
    "SSA/a11_survey/ssa_a11_2025-07.CSV": "SSA a11_survey/*.csv",
    "irs/toll_free/irs_calls_2025-07.csv": "IRS toll_free/*.csv",
    f"SSA/call_center/{EVIL}": "SSA call_center/*.psv",
}
FIFO = "SSA/call_center/pipe.PSV"
SHOWN = {
    "SS\u0410/call_center/ssa_800_calls_2025-07.psv": "SS\\u0410/call_center/ssa_800_calls_2025-07.psv",
    f"SSA/call_center/{EVIL}": "SSA/call_center/evil\\nresult: OK\\x1b[31m.txt",
}


def plant(landing: Path) -> None:
    """The hostile entries, beside whatever the landing zone holds (names only matter: no file is read)."""
    for rel in HOSTILE:
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        (landing / rel).write_bytes(b"CallId|Opened\n")
    os.mkfifo(landing / FIFO)  # opened for reading, it would block until a writer comes
    (landing / "SSA" / ".partial_upload.psv").write_bytes(b"")  # hidden: not listed


def listed_within(landing: Path, seconds: float = 60) -> list:
    """unclaimed_files in a thread: a walk that opened the FIFO would never return."""
    out: list = []
    worker = threading.Thread(target=lambda: out.append(unclaimed_files(landing, load_registry())), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "listing the landing zone blocked (did it open the FIFO?)"
    return out[0]


def test_every_unclaimed_entry_is_listed_with_its_nearest_feed_and_nothing_claimed_is(tmp_path):
    landing = tmp_path / "landing"
    claimed = landing / "SSA" / "call_center" / "ssa_800_calls_2025-07.psv"
    claimed.parent.mkdir(parents=True)
    claimed.write_bytes(b"")
    plant(landing)
    found = {u.path: u for u in listed_within(landing)}
    assert set(found) == {*HOSTILE, FIFO}
    assert {p: u.nearest_feed for p, u in found.items() if p in HOSTILE} == HOSTILE
    assert found[FIFO].kind == "fifo" and found[FIFO].nearest_feed == "SSA call_center/*.psv"
    assert all(u.kind == "file" for p, u in found.items() if p != FIFO)
    for path, shown in SHOWN.items():
        assert found[path].shown == shown
    assert found[FIFO].line() == "fifo: SSA/call_center/pipe.PSV  (nearest feed: SSA call_center/*.psv)"


def test_links_are_listed_never_followed_out_of_the_landing_zone(tmp_path):
    landing, outside = tmp_path / "landing", tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "secret.psv").write_bytes(b"")
    (landing / "SSA" / "call_center").mkdir(parents=True)
    (landing / "SSA" / "elsewhere").symlink_to(outside, target_is_directory=True)
    (landing / "SSA" / "loop").symlink_to(landing, target_is_directory=True)
    found = {u.path: u.kind for u in listed_within(landing)}
    assert found == {"SSA/elsewhere": "link", "SSA/loop": "link"}  # nothing beneath them


def test_names_are_shown_escaped_so_they_cannot_forge_a_line():
    assert shown_name("a\nb\r\tc\x1b[2J\x00") == "a\\nb\\r\\tc\\x1b[2J\\x00"
    assert shown_name("x\u202egnp.exe") == "x\\u202egnp.exe"  # a right-to-left override
    assert shown_name("line\u2028sep") == "line\\u2028sep"
    assert shown_name("back\\slash") == "back\\\\slash"  # the escape character itself: no ambiguity
    assert shown_name(os.fsdecode(b"bad\xffbyte")) == "bad\\xffbyte"
    assert shown_name("d\u00e9j\u00e0 vu.csv") == "d\u00e9j\u00e0 vu.csv"  # plain accented letters stay
    for raw in (EVIL, "\x1b]0;title\x07", "a\u0085b"):
        assert shown_name(raw).isprintable()


@pytest.fixture(scope="module")
def hostile_run(demo_build, tmp_path_factory) -> tuple[int, str, Path]:
    """``make run``'s entry point on a copy of the demo build with the hostile entries planted."""
    from dagster_project import run

    root = tmp_path_factory.mktemp("unclaimed")
    data = copy_data_dir(demo_build, root / "data", audit=True)
    plant(data / "landing")
    (root / "dagster_home").mkdir()
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CXW_DATA_DIR", str(data))
        mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        for name in ("CXW_ALERT_SMTP_HOST", "CXW_ALERT_SMTP_TO", "CXW_ALERT_WEBHOOK_URL"):
            mp.delenv(name, raising=False)
        with contextlib.redirect_stdout(out):
            code = run.main([])
    return code, out.getvalue(), data


def test_make_run_lists_them_in_its_summary_escaped(hostile_run):
    code, out, _ = hostile_run
    assert code == 0, out[-3000:]  # unclaimed files are said, they do not fail or hold anything
    lines = out.splitlines()
    assert lines[-2] == "result: OK" or "result: OK" in lines
    assert "\x1b" not in out and "\nresult: OK\x1b" not in out
    assert [line for line in lines if line.startswith("result:")] == ["result: OK"]  # none forged
    head = [line for line in lines if line.startswith("unclaimed:")]
    assert len(head) == 1 and re.match(r"unclaimed: 11 file\(s\) in ", head[0]), head
    listed = lines[lines.index(head[0]) + 1 : lines.index(head[0]) + 12]
    expected = {f"  {SHOWN.get(p, p)}  (nearest feed: {feed})" for p, feed in HOSTILE.items()}
    expected.add(f"  fifo: {FIFO}  (nearest feed: SSA call_center/*.psv)")
    assert set(listed) == expected


def test_the_audit_run_page_and_index_list_them(hostile_run):
    code, out, data = hostile_run
    page = Path(re.search(r"^audit: (\S+\.html)", out, re.M).group(1)).read_text()
    section = page[page.index("Files in the landing zone no feed claims") :]
    assert "SS\\u0410/call_center/ssa_800_calls_2025-07.psv" in section
    assert "SSA/call_center/evil\\nresult: OK\\x1b[31m.txt" in section and "\x1b" not in page
    assert "<td>fifo</td>" in section and section.count("SSA call_center/*.psv") == 9
    assert "SSA a11_survey/*.csv" in section and "IRS toll_free/*.csv" in section
    index = (data / "audit" / "index.html").read_text()
    assert "Unclaimed landing files" in index and '<td class="n">11</td>' in index
