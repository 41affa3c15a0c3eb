"""Parquet files read a batch of rows at a time, their columns appended to a cache entry being built.

In: a source's Parquet files (a ``sources.SourceSpec``), the columns wanted,
a ``cache.Writer``. Out: the wanted columns as float64, appended batch by
batch, and the meta of the entry (header, problems, each file's rows). Only
those columns are read: a column whose type is not a number (integers,
floats, booleans and decimals are) is a problem found in the schema, never
read; a null value is an empty cell (nan with ``allow_nonfinite``), and so is
a nan or inf, as load_csv has it. Every file must have the first one's column
names, in the same order. pyarrow, an optional dependency, is imported here,
on the first Parquet file, and nowhere else.
Must not: hold a whole file, print, or know the expression language.
"""

from __future__ import annotations

import os

import numpy as np

from exprgrad.errors import DataError
from exprgrad.fitting.cache import Writer
from exprgrad.fitting.cells import ALLOW_NONFINITE, name_shown
from exprgrad.fitting.data import require_same_header
from exprgrad.fitting.reading import shown

__all__ = ["convert_parquet", "parquet_header"]


def _pyarrow():
    """pyarrow and its parquet module, imported only for a Parquet source."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise DataError("reading Parquet files needs pyarrow: pip install 'exprgrad[parquet]'") from None
    return pyarrow, pyarrow.parquet


def convert_parquet(spec, wanted, writer: Writer, progress, chunk_bytes: int) -> dict:
    """Read the wanted columns of every file of a Parquet source a batch of rows at a time into ``writer``."""
    pa, pq = _pyarrow()
    total = sum(os.path.getsize(p) for p in spec.paths)
    done = 0
    first_names = None
    bad: dict[str, str] = {}
    files = []
    for path, label in zip(spec.paths, spec.labels):
        with _opened(pa, pq, path, label) as parquet:
            schema = parquet.schema_arrow
            names = list(schema.names)
            repeated = next((n for n in names if names.count(n) > 1), None)
            if repeated is not None:
                raise DataError(f"{shown(label)}: column name '{name_shown(repeated)}' appears twice")
            if first_names is None:
                first_names = names
                writer.header = tuple(names)
                columns = [n for n in names if wanted is None or n in wanted]
            else:
                require_same_header(label, names, spec.labels[0], first_names)
            for name in columns:
                kind = schema.field(name).type
                if name not in bad and not _numeric(pa, kind):
                    bad[name] = (
                        f"{shown(label)}: column '{name_shown(name)}' holds {kind} values, not numbers"
                    )
                    writer.drop(name)
            read = [n for n in columns if n not in bad]
            rows = parquet.metadata.num_rows
            width = max(len(read), 1) * 8
            batches = (
                parquet.iter_batches(batch_size=max(1024, chunk_bytes // width), columns=read) if read else ()
            )
            first_row = 0
            try:
                for batch in batches:
                    for name in read:
                        if name not in bad:
                            _append_batch(pa, label, name, batch.column(name), first_row, spec, bad, writer)
                    first_row += batch.num_rows
                    if progress is not None and rows:
                        progress(spec.label, done + os.path.getsize(path) * first_row // rows, total)
            except (OSError, pa.ArrowException) as exc:
                raise DataError(f"cannot read Parquet file '{shown(label)}': {_reason(exc)}") from None
        done += os.path.getsize(path)
        files.append((label, rows))
    if progress is not None:
        progress(spec.label, total, total)
    return {"header": first_names, "problems": bad, "files": files}


def parquet_header(spec) -> tuple[str, ...]:
    """The column names of a Parquet source's first file, from its schema alone."""
    pa, pq = _pyarrow()
    with _opened(pa, pq, spec.paths[0], spec.labels[0]) as parquet:
        return tuple(parquet.schema_arrow.names)


def _opened(pa, pq, path: str, label: str):
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read Parquet file '{shown(label)}': {_reason(exc)}") from None


def _numeric(pa, kind) -> bool:
    types = pa.types
    return (
        types.is_integer(kind) or types.is_floating(kind) or types.is_boolean(kind) or types.is_decimal(kind)
    )


def _append_batch(pa, label, name, array, first_row, spec, bad, writer) -> None:
    """One batch of a column as float64; a null or (unless allowed) a non-finite value makes it a problem."""
    values = array.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    where = None
    if array.null_count and not spec.allow_nonfinite:
        where = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        problem = (
            f"{shown(label)}: row {first_row + where + 1}: empty (null) value in column '{name_shown(name)}'"
        )
    elif not spec.allow_nonfinite and not np.isfinite(values).all():
        where = int(np.flatnonzero(~np.isfinite(values))[0])
        problem = (
            f"{shown(label)}: row {first_row + where + 1}: '{values[where]:g}' in column '{name_shown(name)}' "
            f"is not a finite number (pass {ALLOW_NONFINITE} to keep it)"
        )
    if where is None:
        writer.append(name, values)
    else:
        bad[name] = problem
        writer.drop(name)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
