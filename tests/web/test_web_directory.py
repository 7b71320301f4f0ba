"""The person directory at city size: extracts looked up by ID, never read into Python whole."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from benefits.web.directory import Directory
from benefits.web.privacy import person_ref

ROWS = {
    "id_no": [" 330106194501011233 ", "33010619500202123x", "330106194501011233", None],
    "name": ["张三明", "李四", "重复", "无"],
    "sex": ["M", "F", "M", "F"],
    "birth_date": ["1945-01-01", "1950-02-02", "1945-01-01", "1960-01-01"],
    "household_no": ["H1", "H2", "H9", "H3"],
    "relation": ["head", "head", "head", "head"],
    "hukou_community": ["330106001", "330106002", "330106009", "330106003"],
    "hukou_status": ["active", "active", "active", "active"],
}


@pytest.fixture(params=["parquet", "csv"])
def delivery(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    frame = pl.DataFrame(ROWS)
    if request.param == "parquet":
        frame.write_parquet(tmp_path / "persons.parquet", row_group_size=2)
    else:
        frame.write_csv(tmp_path / "persons.csv")
    return tmp_path


def test_a_person_is_found_by_id_first_row_wins(delivery: Path) -> None:
    d = Directory(secret="k")
    d.add_delivery(delivery)
    p = d.person("330106194501011233")
    assert p is not None and p["name"] == "张三明" and p["household_no"] == "H1"
    assert d.person("33010619500202123X")["hukou_community"] == "330106002"  # type: ignore[index]
    assert d.person("330106199901011234") is None
    assert d.masked_name("33010619500202123X") == "李*"
    many = d.people(["330106194501011233", "33010619500202123X", "330106199901011234"])
    assert {k: v["household_no"] for k, v in many.items()} == {
        "330106194501011233": "H1", "33010619500202123X": "H2"}


def test_a_reference_not_handed_out_is_resolved_from_the_extract(delivery: Path) -> None:
    d = Directory(secret="k")
    d.add_delivery(delivery)
    assert d.resolve(person_ref("k", "33010619500202123X")) == "33010619500202123X"
    assert d.resolve(person_ref("k", "330106199901011234")) is None
    d.add_ids(["330106199901011234"])  # known from a run's traces: resolvable now
    assert d.resolve(person_ref("k", "330106199901011234")) == "330106199901011234"
    assert set(d.known_ids()) == {"330106194501011233", "33010619500202123X",
                                  "330106199901011234"}
