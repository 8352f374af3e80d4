from pathlib import Path

import polars as pl
import pytest

from vigil.ingest import SourceFileError
from vigil.ingest.rejects import RejectedRows, reject_path
from vigil.ingest.source import SourceTable


def test_line_numbers_blank_lines_bom_and_stripping(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes('\ufeffa,b\n1, x \n\n"multi\nline",2\n3,\n'.encode())
    table = SourceTable(path)
    assert table.columns == ["a", "b"]
    assert [(r.line, r.cells) for r in table.rows()] == [
        (2, ["1", "x"]),
        (4, ["multi\nline", "2"]),
        (6, ["3", None]),
    ]


def test_secret_column_never_leaves_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "card.csv"
    path.write_text("number_id,cvc,limit\nc1,123,5\nc2,12345,6\nc3,999\n")
    table = SourceTable(path, secrets={"CVC": lambda v: None if v and len(v) == 3 else "bad"})
    assert table.columns == ["number_id", "limit"]
    rows = list(table.rows())
    assert [(r.cells, r.problems) for r in rows] == [
        (["c1", "5"], []),
        (["c2", "6"], [("cvc", "bad", "[redacted]")]),
        ([], [("(row)", "expected 3 fields, found 2", None)]),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "empty file"),
        ("latin.csv", b"a,b\n1,\xff\n", "not UTF-8"),
        ("dup.csv", b"a,a\n1,2\n", "repeated column names: a"),
        ("data.xlsx", b"PK", "unknown format '.xlsx'"),
        ("broken.parquet", b"not parquet", "not a readable Parquet file"),
    ],
)
def test_unusable_files_name_the_file(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceFileError) as info:
        list(SourceTable(path).rows())
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_parquet_rows_are_numbered_as_csv_would_be(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame({"a": [1, 2], "b": ["x", None]}).write_parquet(path)
    assert [(r.line, r.cells) for r in SourceTable(path).rows()] == [(2, [1, "x"]), (3, [2, None])]


def test_reject_file_keeps_surplus_fields(tmp_path: Path) -> None:
    from vigil.ingest import RowError

    rows = RejectedRows(str(tmp_path / "t.csv"), ["a", "b"])
    rows.add(3, ["1", "2", "3", "4"])
    rows.add(4, ["1"])
    errors = [RowError("t.csv", 3, "(row)", "long"), RowError("t.csv", 4, "(row)", "short")]
    out = rows.write(errors, tmp_path)
    assert out == reject_path(tmp_path / "t.csv", None)
    assert out.read_text().splitlines() == [
        "a,b,error_line,error_field,error_message",
        '1,"2,3,4",3,(row),long',
        "1,,4,(row),short",
    ]
