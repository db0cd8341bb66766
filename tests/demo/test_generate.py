import hashlib
from pathlib import Path

from dagster_project.demo.generate import BAD_ROWS, generate
from dagster_project.ingest.loader import discover
from dagster_project.ingest.registry import load_registry


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_writes_the_same_bytes(tmp_path: Path):
    generate(tmp_path / "a", seed=7)
    generate(tmp_path / "b", seed=7)
    generate(tmp_path / "c", seed=8)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_six_agencies_three_domains_all_registered(tmp_path: Path):
    written = generate(tmp_path, scale=0.1)
    assert len(written) >= 6
    feeds = load_registry()
    kinds = {f.kind for f in feeds}
    assert {"survey_responses", "contacts", "web_analytics"} <= kinds
    # every file written is picked up by exactly one registered feed
    claimed = [p for f in feeds for p in discover(f, tmp_path)]
    assert sorted(claimed) == sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(BAD_ROWS) == 2
