"""exprgrad.fitting.data: CSV -> float64 columns, and one-line errors that say where."""

from __future__ import annotations

import codecs
import gzip
import io
import math
import os
import re
import sys
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exprgrad.errors import DataError, OptionError
from exprgrad.fitting.data import MAX_CSV_BYTES, Dataset, load_csv, require_columns
from exprgrad.fitting.reading import read_text


def write(tmp_path, text: str | bytes, name: str = "d.csv") -> str:
    """Write ``text`` byte for byte (no newline translation) and return its path."""
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


def error_of(path: str, **options) -> str:
    """The message of reading ``path`` and asking for every column as numbers."""
    with pytest.raises(DataError) as info:
        data = load_csv(path, **options)
        require_columns(data, data.names)
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
        f"{path}:4:1: '{shown}' in column 'x' is not a finite number (pass allow_nonfinite=True to keep it)"
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
        f"{path}:2:2: 'nan' in column 'y' is not a finite number (pass allow_nonfinite=True to keep it)"
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
        require_columns(data, iter(["w", "x", "v", "w"]), what="the target")
    assert str(info.value) == f"the target needs columns 'w', 'v', which {path} lacks (it has: x, y)"


def test_quoted_header_names_lose_their_quotes(tmp_path):
    # R's write.csv quotes the header of an all-numeric table: "x","y".
    data = load_csv(write(tmp_path, '"x", "θ 1" ,y\n1,2,3\n'))
    assert data.names == ("x", "θ 1", "y")
    np.testing.assert_array_equal(data.columns["θ 1"], [2.0])
    path = write(tmp_path, '"x","x"\n1,2\n', name="dup.csv")
    assert error_of(path) == f"{path}:1: column name 'x' appears twice (columns 1 and 2)"


# --- every input read once, and bounded ----------------------------------------------

ROWS_5000 = "x\n" + "".join(f"{i}\n" for i in range(5000))


def test_a_stream_is_read_once_to_its_end():
    """A pipe cannot be read twice: every row of it must be in the data."""
    read_fd, write_fd = os.pipe()
    writer = threading.Thread(target=_write_and_close, args=(write_fd, ROWS_5000.encode()))
    writer.start()
    with open(read_fd, "rb") as stream:
        data = load_csv(stream)
    writer.join()
    assert data.rows == 5000 and data.columns["x"][-1] == 4999.0


def _write_and_close(fd: int, payload: bytes) -> None:
    with open(fd, "wb") as stream:
        stream.write(payload)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
@pytest.mark.parametrize("text", [ROWS_5000, "x,y\n1,2\n3,abc\n", "x\n1\n  \n2\n"])
def test_a_named_pipe_is_opened_once(tmp_path, text):
    """Opening a FIFO a second time would wait forever for a writer that has gone."""
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(text))
    writer.daemon = True
    writer.start()
    data = load_csv(fifo)
    writer.join(timeout=5)
    expected = 5000 if text == ROWS_5000 else 2
    assert data.rows == expected


def test_stream_name_labels_messages():
    stream = io.BytesIO(b"x,y\n1,2\n3\n")
    stream.name = "<stdin>"
    with pytest.raises(DataError) as info:
        load_csv(stream)
    assert str(info.value) == "<stdin>:3: expected 2 cells (x, y), found 1"


def test_regular_file_over_the_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "sparse.csv"
    with open(path, "wb") as file:
        file.truncate(MAX_CSV_BYTES + 1)  # sparse: no disk used, nothing worth reading
    assert error_of(str(path)) == f"data file '{path}' is larger than 1 GiB, the most exprgrad reads"


def test_stream_over_the_limit_stops_at_the_limit():
    stream = io.BytesIO(b"x\n" + b"1\n" * 5000)
    with pytest.raises(DataError, match="larger than 1 KiB, the most exprgrad reads"):
        load_csv(stream, max_bytes=1024)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_endless_binary_devices_are_refused_at_once(device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    message = error_of(device)
    assert message.startswith(f"cannot read data file '{device}': it ")
    # zeros are NUL bytes; random bytes meet a NUL or an invalid UTF-8 sequence first
    assert (
        "binary data" in message
        if device == "/dev/zero"
        else ("binary data" in message or "not UTF-8" in message)
    )


def test_nul_byte_is_binary_data_with_its_line(tmp_path):
    path = write(tmp_path, b"x,y\n1,2\n3,\x004\n")
    assert (
        error_of(path)
        == f"cannot read data file '{path}': it holds binary data, not text (a NUL byte on line 3)"
    )


def test_not_utf8_after_the_first_chunk(tmp_path):
    path = write(tmp_path, b"x\n" + b"1\n" * 600_000 + b"\xff\n")
    assert (
        error_of(path) == f"cannot read data file '{path}': it is not UTF-8 text (byte 0xff on line 600002)"
    )


def test_character_cut_off_at_the_end(tmp_path):
    path = write(tmp_path, b"x\n1\n" + "θ".encode()[:1])
    assert error_of(path) == (f"cannot read data file '{path}': it is not UTF-8 text (byte 0xce on line 3)")


def test_read_text_limits_and_bom(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfa + 1", "e.txt")
    assert read_text(path, max_bytes=100) == "a + 1"
    with pytest.raises(OptionError, match="expression file '.*' is larger than 4 bytes"):
        read_text(path, max_bytes=4, what="expression file", error=OptionError)
    assert read_text(io.BytesIO("é".encode("latin-1")), max_bytes=10, encoding="latin-1") == "é"


# --- columns the expression does not read may hold anything -------------------------


def test_text_column_does_not_make_the_file_unreadable(tmp_path):
    path = write(tmp_path, "x,y,name\n1,2,a\n2,4.1,b\n3,5.9,c\n")
    data = load_csv(path)
    assert data.names == ("x", "y", "name")
    assert list(data.columns) == ["x", "y"] and data.rows == 3
    np.testing.assert_array_equal(data.columns["y"], [2.0, 4.1, 5.9])
    require_columns(data, ["x", "y"])
    assert "name" not in data.columns and data.columns.get("name") is None
    with pytest.raises(DataError) as info:
        require_columns(data, ["y", "name"])
    assert str(info.value) == f"{path}:2:3: cannot read 'a' as a number in column 'name'"
    with pytest.raises(DataError, match=r":2:3: cannot read 'a'"):
        data.columns["name"]
    with pytest.raises(KeyError):
        data.columns["nowhere"]


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("", "empty cell in column 'c'"),
        ("nan", "'nan' in column 'c' is not a finite number"),
        ("1_0", "cannot read"),
    ],
)
def test_any_bad_cell_only_matters_when_its_column_is_used(tmp_path, cell, problem):
    path = write(tmp_path, f"a,b,c\n1,2,3\n4,5,{cell}\n")
    data = load_csv(path)
    np.testing.assert_array_equal(data.columns["a"], [1.0, 4.0])
    with pytest.raises(DataError, match=f"^{re.escape(path)}:3:3: {re.escape(problem)}"):
        require_columns(data, ["a", "c"])


def test_text_column_read_by_the_scan_matches_the_fast_path(tmp_path, rng):
    table = rng.standard_normal((200, 2)) * 10.0 ** rng.integers(-30, 30, (200, 2))
    body = "".join(f"{float(a)!r},label {i},{float(b)!r}\n" for i, (a, b) in enumerate(table))
    data = load_csv(write(tmp_path, "a,t,b\n" + body))
    np.testing.assert_array_equal(data.columns["a"], table[:, 0])
    np.testing.assert_array_equal(data.columns["b"], table[:, 1])
    assert data.columns["b"].flags.c_contiguous and not data.columns["b"].flags.writeable


def test_ragged_rows_are_refused_even_in_unused_columns(tmp_path):
    path = write(tmp_path, "x,name\n1,a\n2,b,c\n")
    assert error_of(path) == f"{path}:3: expected 2 cells (x, name), found 3"


# --- separators and decimal commas ---------------------------------------------------


@pytest.mark.parametrize("sep", [";", "\t"])
def test_separator_is_sniffed(tmp_path, sep):
    data = load_csv(
        write(tmp_path, sep.join(["x", "y", "note"]) + "\n" + sep.join(["1", "2", "a, b"]) + "\n")
    )
    assert data.names == ("x", "y", "note")
    np.testing.assert_array_equal(data.columns["y"], [2.0])


def test_separator_can_be_forced(tmp_path):
    path = write(tmp_path, "x;y\n1;2\n")
    assert load_csv(path, sep=",").names == ("x;y",)
    assert load_csv(path, sep=";").names == ("x", "y")


def test_separator_agreed_by_header_and_rows_wins(tmp_path):
    # The header has one comma and one semicolon; only the semicolon splits every row alike.
    data = load_csv(write(tmp_path, "a,b;c\n1;2\n3;4\n"))
    assert data.names == ("a,b", "c")


def test_decimal_commas_are_recognised_and_read(tmp_path):
    path = write(tmp_path, "x;y\n1,5;2,25\n-3,0;1e3\n")
    with pytest.raises(DataError) as info:
        require_columns(load_csv(path), ["x"])
    assert str(info.value) == (
        f"{path}:2:1: cannot read '1,5' as a number in column 'x' (it looks like a decimal comma: pass decimal=',')"
    )
    data = load_csv(path, decimal=",")
    np.testing.assert_array_equal(data.columns["x"], [1.5, -3.0])
    np.testing.assert_array_equal(data.columns["y"], [2.25, 1000.0])


def test_decimal_comma_single_column(tmp_path):
    path = write(tmp_path, "x\n1,5\n2,25\n")
    assert "pass decimal=','" in error_of(path)
    np.testing.assert_array_equal(load_csv(path, decimal=",").columns["x"], [1.5, 2.25])


def test_decimal_point_refused_where_commas_were_promised(tmp_path):
    path = write(tmp_path, "x;y\n1,5;2\n1.234;3\n")
    data = load_csv(path, decimal=",")
    np.testing.assert_array_equal(data.columns["y"], [2.0, 3.0])
    assert error_of(path, decimal=",") == (
        f"{path}:3:1: cannot read '1.234' as a number in column 'x' (with decimal=',' a number is written 1,5)"
    )


def test_semicolon_file_with_crlf_and_bom(tmp_path):
    data = load_csv(write(tmp_path, b"\xef\xbb\xbfx;y\r\n1,5;2\r\n"), decimal=",")
    assert data.names == ("x", "y")
    np.testing.assert_array_equal(data.columns["x"], [1.5])


def test_ragged_row_names_the_separator(tmp_path):
    path = write(tmp_path, "x;y\n1;2\n3\n")
    assert error_of(path) == f"{path}:3: expected 2 cells (x, y) separated by semicolons, found 1"


# --- control characters never reach a message raw -----------------------------------


@pytest.mark.parametrize("bad", ["\x1b[31m", "\x07", "\u202e", "\x9b"])
def test_control_characters_are_escaped(tmp_path, bad):
    path = write(tmp_path, f"x,y{bad}\n1,2{bad}\n")
    message = error_of(path)
    assert bad not in message and repr(bad)[1:-1] in message
    dup = write(tmp_path, f"x{bad},x{bad}\n1,2\n", "dup.csv")
    assert bad not in error_of(dup)
    data = load_csv(write(tmp_path, f"a{bad}\n1\n", "names.csv"))
    with pytest.raises(DataError) as info:
        require_columns(data, ["z"])
    assert bad not in str(info.value)


# --- wrong types through the Python API ---------------------------------------------


@pytest.mark.parametrize("source", [None, 3, 2.5, ["x"], b"x.csv"])
def test_load_csv_source_of_the_wrong_type(source):
    with pytest.raises(DataError, match="expected the path of a file or a binary stream"):
        load_csv(source)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"sep": "|"}, "sep must be"),
        ({"sep": 1}, "sep must be"),
        ({"decimal": ";"}, "decimal must be"),
        ({"sep": ",", "decimal": ","}, "both ','"),
        ({"allow_nonfinite": "yes"}, "allow_nonfinite must be True or False"),
        ({"max_bytes": 0}, "max_bytes must be a positive int"),
        ({"max_bytes": "1"}, "max_bytes must be a positive int"),
    ],
)
def test_load_csv_options_of_the_wrong_kind(tmp_path, options, words):
    with pytest.raises(OptionError, match=re.escape(words)):
        load_csv(write(tmp_path, "x\n1\n"), **options)


def test_require_columns_and_dataset_misuse():
    with pytest.raises(DataError, match="needs a Dataset"):
        require_columns({"x": [1.0]}, ["x"])
    with pytest.raises(DataError, match="path must be a string"):
        Dataset(path=None, columns={})
    with pytest.raises(DataError, match="mappings"):
        Dataset(path="d", columns=[1, 2])
    with pytest.raises(DataError, match="one-dimensional numpy array"):
        Dataset(path="d", columns={"x": [1.0, 2.0]})
    with pytest.raises(DataError, match="same length"):
        Dataset(path="d", columns={"x": np.zeros(2), "y": np.zeros(3)})
    data = Dataset(path="d", columns={"x": np.zeros(2)})
    assert data.names == ("x",) and data.rows == 2
    require_columns(data, "x")


def test_columns_read_one_by_one_match_and_keep_header_order(tmp_path, rng):
    """A bad cell in one numeric-looking column sends every such column down the one-by-one read."""
    table = rng.standard_normal((100, 2)) * 10.0 ** rng.integers(-30, 30, (100, 2))
    body = "".join(
        f"{float(a)!r},t{i},{float(b)!r},{i if i < 99 else 'oops'}\n" for i, (a, b) in enumerate(table)
    )
    path = write(tmp_path, "a,name,b,c\n" + body)
    data = load_csv(path)
    assert list(data.columns) == ["a", "b"] and data.names == ("a", "name", "b", "c")
    np.testing.assert_array_equal(data.columns["a"], table[:, 0])
    np.testing.assert_array_equal(data.columns["b"], table[:, 1])
    assert data.problems["c"] == f"{path}:101:4: cannot read 'oops' as a number in column 'c'"
    assert data.problems["name"] == f"{path}:2:2: cannot read 't0' as a number in column 'name'"


def test_long_and_many_names_are_shortened_in_messages(tmp_path):
    names = [f"column_{i}_" + "n" * 100 for i in range(30)]
    data = load_csv(write(tmp_path, ",".join(names) + "\n" + ",".join("1" * 30) + "\n"))
    with pytest.raises(DataError) as info:
        require_columns(data, ["z" * 1000])
    message = str(info.value)
    assert len(message) < 2500 and "... (30 columns)" in message and "z" * 77 + "..." in message


def test_wrong_separator_is_hinted(tmp_path):
    path = write(tmp_path, "x,y\n1,2\n")
    with pytest.raises(DataError) as info:
        require_columns(load_csv(path, sep=";"), ["x"])
    assert str(info.value) == (
        f"the expression needs column 'x', which {path} lacks (it has: x,y); "
        "its header is one name with a comma in it: are the cells separated by something else?"
    )


def test_closed_stream_and_wrong_source_with_a_label():
    stream = io.BytesIO(b"x\n1\n")
    stream.close()
    with pytest.raises(DataError, match="cannot read data file '<stream>': it is closed"):
        load_csv(stream)
    with pytest.raises(DataError, match="expected the path of a file or a binary stream, not NoneType"):
        load_csv(None, label="data")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_a_byte_order_mark_is_read(tmp_path, codec):
    """Spreadsheets save "Unicode text" as tab-separated UTF-16 with a byte-order mark."""
    text = "x\tθ\r\n1\t2,5\r\n3\t4\r\n"
    payload = text.encode(codec)
    if codec != "utf-16":
        payload = ("\ufeff" + text).encode(codec)
    data = load_csv(write(tmp_path, payload), decimal=",")
    assert data.names == ("x", "θ")
    np.testing.assert_array_equal(data.columns["θ"], [2.5, 4.0])


def test_broken_utf16_is_one_error(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF16_LE + "x\n1\n".encode("utf-16-le") + b"\x00\xd8")
    assert error_of(path) == f"cannot read data file '{path}': it starts as UTF-16 text but is not UTF-16"


def test_unicode_spaces_around_a_number_read_alike_on_both_paths(tmp_path):
    fast = load_csv(write(tmp_path, "x,y\n1,2\u00a0\n3,\u20034\n", "fast.csv"))
    slow = load_csv(write(tmp_path, "x,y,t\n1,2\u00a0,a\n3,\u20034,b\n", "slow.csv"))
    one_by_one = load_csv(write(tmp_path, "x,y\n1,2\u00a0\n3,\u20034\n5,oops\n", "bad.csv"))
    np.testing.assert_array_equal(fast.columns["y"], [2.0, 4.0])
    np.testing.assert_array_equal(slow.columns["y"], [2.0, 4.0])
    assert "y" not in one_by_one.columns and one_by_one.problems["y"].endswith(
        "cannot read 'oops' as a number in column 'y'"
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=st.lists(
        st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=2, max_size=2),
        min_size=1,
        max_size=8,
    ),
    sep=st.sampled_from([",", ";", "\t"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    text_column=st.booleans(),
    blank_line=st.booleans(),
    spaces=st.sampled_from(["", " ", "  "]),
)
def test_every_way_of_writing_a_table_reads_the_same_numbers(
    tmp_path, table, sep, newline, text_column, blank_line, spaces
):
    """Separator, line endings, a text column, blank lines: the numbers are the ones written."""
    header = ["a", "b"] + (["label"] if text_column else [])
    lines = [sep.join(header)]
    for i, (a, b) in enumerate(table):
        cells = [f"{spaces}{a!r}", f"{b!r}{spaces}"] + ([f"row {i}"] if text_column else [])
        lines.append(sep.join(cells))
    if blank_line:
        lines.insert(len(lines) // 2 + 1, "   ")
    data = load_csv(write(tmp_path, newline.join(lines) + newline))
    assert data.names == tuple(header) and data.rows == len(table)
    np.testing.assert_array_equal(data.columns["a"], [row[0] for row in table])
    np.testing.assert_array_equal(data.columns["b"], [row[1] for row in table])
    if text_column:
        assert "label" in data.problems


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (gzip.compress(b"x\n1\n"), "it is gzip-compressed, not text: decompress it first"),
        (b"PK\x03\x04\x14\x00\x06\x00", "it is a zip archive, not text (a spreadsheet workbook, .xlsx?)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "it is an Office document, not text (.xls?)"),
    ],
)
def test_compressed_and_office_files_are_named(tmp_path, payload, words):
    path = write(tmp_path, payload, "data.xlsx")
    message = error_of(path)
    assert message.startswith(f"cannot read data file '{path}': ") and words in message
