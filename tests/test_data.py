"""exprgrad.fit.data: CSV -> float64 columns, and one-line errors that say where."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

from exprgrad.errors import DataError
from exprgrad.fit.data import Dataset, load_csv, require_columns


def write(tmp_path, text: str | bytes, name: str = "d.csv") -> str:
    """Write ``text`` byte for byte (no newline translation) and return its path."""
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


def error_of(path: str, **options) -> str:
    with pytest.raises(DataError) as info:
        load_csv(path, **options)
    return str(info.value)


# --- good files ---------------------------------------------------------------------


def test_good_file_values_order_and_rows(tmp_path):
    path = write(tmp_path, "y,x,z\n1,2,3\n4,5,6\n")
    data = load_csv(path)
    assert isinstance(data, Dataset)
    assert data.path == path
    assert data.names == ("y", "x", "z")
    assert list(data.columns) == ["y", "x", "z"]
    assert data.rows == 2
    np.testing.assert_array_equal(data.columns["y"], [1.0, 4.0])
    np.testing.assert_array_equal(data.columns["x"], [2.0, 5.0])
    np.testing.assert_array_equal(data.columns["z"], [3.0, 6.0])


def test_columns_are_contiguous_float64(tmp_path):
    data = load_csv(write(tmp_path, "a,b\n1,2\n3,4\n5,6\n"))
    for column in data.columns.values():
        assert column.dtype == np.float64
        assert column.flags.c_contiguous
        assert column.shape == (3,)


def test_columns_are_read_only(tmp_path):
    data = load_csv(write(tmp_path, "a\n1\n"))
    with pytest.raises(ValueError):
        data.columns["a"][0] = 2.0


def test_nist_style_numbers(tmp_path):
    path = write(tmp_path, "y,x\n10.07E0,.11019\n-3,1e-3\n+2.5e+2,  7  \n")
    data = load_csv(path)
    np.testing.assert_array_equal(data.columns["y"], [10.07, -3.0, 250.0])
    np.testing.assert_array_equal(data.columns["x"], [0.11019, 0.001, 7.0])


def test_names_are_kept_as_given(tmp_path):
    data = load_csv(write(tmp_path, " x , θ,x_1,a b\n1,2,3,4\n"))
    assert data.names == ("x", "θ", "x_1", "a b")


def test_single_column(tmp_path):
    data = load_csv(write(tmp_path, "x\n1\n2\n"))
    assert data.names == ("x",)
    np.testing.assert_array_equal(data.columns["x"], [1.0, 2.0])


def test_bom_and_crlf(tmp_path):
    data = load_csv(write(tmp_path, b"\xef\xbb\xbfx,y\r\n1,2\r\n3,4\r\n"))
    assert data.names == ("x", "y")
    np.testing.assert_array_equal(data.columns["y"], [2.0, 4.0])


def test_cr_only_line_endings(tmp_path):
    data = load_csv(write(tmp_path, "x,y\r1,2\r3,4"))
    np.testing.assert_array_equal(data.columns["x"], [1.0, 3.0])


def test_no_trailing_newline(tmp_path):
    data = load_csv(write(tmp_path, "x,y\n1,2\n3,4"))
    assert data.rows == 2


def test_blank_lines_are_skipped(tmp_path):
    data = load_csv(write(tmp_path, "\n\nx,y\n\n1,2\n   \n\t\n3,4\n\n\n"))
    assert data.names == ("x", "y")
    np.testing.assert_array_equal(data.columns["x"], [1.0, 3.0])
    np.testing.assert_array_equal(data.columns["y"], [2.0, 4.0])


def test_pathlike_accepted(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("x\n1\n")
    assert load_csv(path).path == str(path)


def test_allow_nonfinite_keeps_nan_and_inf(tmp_path):
    data = load_csv(write(tmp_path, "x,y\nnan,1\n2,inf\n-inf,NaN\n"), allow_nonfinite=True)
    x, y = data.columns["x"], data.columns["y"]
    assert math.isnan(x[0]) and x[1] == 2.0 and x[2] == -math.inf
    assert y[1] == math.inf and math.isnan(y[2])


def test_fast_and_exact_paths_agree(tmp_path):
    """A whitespace-only line sends the file down the Python scan; the numbers match."""
    rng = np.random.default_rng(0)
    table = rng.standard_normal((50, 3)) * 10.0 ** rng.integers(-20, 20, (50, 3))
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in table)
    fast = load_csv(write(tmp_path, "a,b,c\n" + body + "\n", "fast.csv"))
    slow = load_csv(write(tmp_path, "a,b,c\n  \n" + body + "\n", "slow.csv"))
    for name, index in (("a", 0), ("b", 1), ("c", 2)):
        np.testing.assert_array_equal(fast.columns[name], table[:, index])
        np.testing.assert_array_equal(slow.columns[name], table[:, index])


# --- unreadable and empty files -----------------------------------------------------


def test_missing_file(tmp_path):
    path = str(tmp_path / "x.csv")
    assert error_of(path) == f"cannot read data file '{path}': no such file"


def test_directory(tmp_path):
    path = str(tmp_path)
    assert error_of(path) == f"cannot read data file '{path}': it is a directory"


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path):
    path = write(tmp_path, "x\n1\n")
    os.chmod(path, 0)
    assert error_of(path) == f"cannot read data file '{path}': permission denied"


def test_not_utf8(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfx,y\r\n1,2\r\n3,\xff\r\n")
    assert error_of(path) == f"cannot read data file '{path}': it is not UTF-8 text (byte 0xff on line 3)"


def test_not_utf8_in_header(tmp_path):
    path = write(tmp_path, b"x,\xe9\n1,2\n")
    assert error_of(path) == f"cannot read data file '{path}': it is not UTF-8 text (byte 0xe9 on line 1)"


@pytest.mark.parametrize("text", ["", "\n\n", "  \r\n", "\ufeff"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path, text)
    assert error_of(path) == f"data file '{path}' is empty: expected a header row naming the columns"


@pytest.mark.parametrize("text", ["x,y", "x,y\n", "x,y\n\n  \n"])
def test_header_only(tmp_path, text):
    path = write(tmp_path, text)
    assert error_of(path) == f"data file '{path}' has a header but no data rows"


# --- header -------------------------------------------------------------------------


def test_column_without_name(tmp_path):
    path = write(tmp_path, "x,y, \n1,2,3\n")
    assert error_of(path) == f"{path}:1: column 3 has no name"


def test_trailing_comma_in_header(tmp_path):
    path = write(tmp_path, "\nx,y,\n1,2,3\n")
    assert error_of(path) == f"{path}:2: column 3 has no name"


def test_duplicate_column_name(tmp_path):
    path = write(tmp_path, "x,y,x\n1,2,3\n")
    assert error_of(path) == f"{path}:1: column name 'x' appears twice (columns 1 and 3)"


# --- rows and cells -----------------------------------------------------------------


def test_ragged_row_too_few(tmp_path):
    path = write(tmp_path, "x,y,z\n1,2,3\n4,5\n")
    assert error_of(path) == f"{path}:3: expected 3 cells (x, y, z), found 2"


def test_ragged_row_too_many(tmp_path):
    path = write(tmp_path, "x,y\n1,2\n3,4,\n")
    assert error_of(path) == f"{path}:3: expected 2 cells (x, y), found 3"


def test_every_row_wider_than_header(tmp_path):
    path = write(tmp_path, "x,y\n1,2,3\n4,5,6\n")
    assert error_of(path) == f"{path}:2: expected 2 cells (x, y), found 3"


def test_bad_cell(tmp_path):
    path = write(tmp_path, "x,y\n1,2\n3,4\n5,6\n7,abc\n")
    assert error_of(path) == f"{path}:5:2: cannot read 'abc' as a number in column 'y'"


@pytest.mark.parametrize("cell", ["1_000", "0x10", "1 2", '"1"', "1.5d0", "١"])
def test_cells_numpy_refuses_are_refused(tmp_path, cell):
    path = write(tmp_path, f"x,y\n1,{cell}\n")
    assert error_of(path) == f"{path}:2:2: cannot read '{cell}' as a number in column 'y'"


def test_long_bad_cell_is_shortened(tmp_path):
    path = write(tmp_path, "x\n" + "z" * 100 + "\n")
    assert error_of(path) == f"{path}:2:1: cannot read '{'z' * 37}...' as a number in column 'x'"


def test_empty_cell(tmp_path):
    path = write(tmp_path, "x,y\n1,2\n3,4\n5,6\n7,  \n")
    assert error_of(path) == f"{path}:5:2: empty cell in column 'y'"


@pytest.mark.parametrize(("cell", "shown"), [("nan", "nan"), (" -inf ", "-inf"), ("1e999", "1e999")])
def test_nonfinite_cell_refused(tmp_path, cell, shown):
    path = write(tmp_path, f"x,y\n1,2\n3,4\n{cell},5\n")
    assert error_of(path) == (
        f"{path}:4:1: '{shown}' in column 'x' is not a finite number (pass --allow-nan to keep it)"
    )


def test_line_numbers_count_skipped_blank_lines(tmp_path):
    path = write(tmp_path, "\r\n\r\nx,y\r\n\r\n1,2\r\n   \r\n\r\n3,oops\r\n")
    assert error_of(path) == f"{path}:8:2: cannot read 'oops' as a number in column 'y'"


def test_line_numbers_after_blank_lines_for_ragged_row(tmp_path):
    path = write(tmp_path, "x,y,z\n\n1,2,3\n\n\n4,5\n")
    assert error_of(path) == f"{path}:6: expected 3 cells (x, y, z), found 2"


def test_first_problem_is_reported(tmp_path):
    path = write(tmp_path, "x,y\n1,nan\n2,abc\n")
    assert error_of(path) == (
        f"{path}:2:2: 'nan' in column 'y' is not a finite number (pass --allow-nan to keep it)"
    )
    assert error_of(path, allow_nonfinite=True) == f"{path}:3:2: cannot read 'abc' as a number in column 'y'"


def test_messages_are_one_line(tmp_path):
    path = write(tmp_path, "x,y\n1,\n")
    assert "\n" not in error_of(path)


# --- require_columns ----------------------------------------------------------------


def test_require_columns_present(tmp_path):
    data = load_csv(write(tmp_path, "x,y\n1,2\n"))
    require_columns(data, ["y", "x"])
    require_columns(data, [])


def test_require_columns_missing_one(tmp_path):
    path = write(tmp_path, "x,y\n1,2\n", "x.csv")
    data = load_csv(path)
    with pytest.raises(DataError) as info:
        require_columns(data, ["x", "z"])
    assert str(info.value) == f"the expression needs column 'z', which {path} lacks (it has: x, y)"


def test_require_columns_missing_several(tmp_path):
    path = write(tmp_path, "x,y\n1,2\n")
    data = load_csv(path)
    with pytest.raises(DataError) as info:
        require_columns(data, iter(["w", "x", "v", "w"]), what="--target")
    assert str(info.value) == f"--target needs columns 'w', 'v', which {path} lacks (it has: x, y)"


def test_quoted_header_names_lose_their_quotes(tmp_path):
    # R's write.csv quotes the header of an all-numeric table: "x","y".
    data = load_csv(write(tmp_path, '"x", "θ 1" ,y\n1,2,3\n'))
    assert data.names == ("x", "θ 1", "y")
    np.testing.assert_array_equal(data.columns["θ 1"], [2.0])
    path = write(tmp_path, '"x","x"\n1,2\n', name="dup.csv")
    assert error_of(path) == f"{path}:1: column name 'x' appears twice (columns 1 and 2)"
