"""Standard errors and the residual sum of squares: one decomposition, the evaluator's sum.

Classes tested: least-squares standard errors equal the textbook
sqrt(diag(s² (JᵀJ)⁻¹)) for columns of any size; they and the conditioning
come from one QR of the tall n-by-p Jacobian (every other factorization is of
a p-by-p matrix), so they cost one pass of QR over the rows; the residual sum
of squares is the evaluator's sum over rows (block sums added exactly), so it
is the cost of a model fit bit for bit, whatever the number of rows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from exprgrad.fitting import fit
from exprgrad.fitting.linear import conditioning, least_squares_stderr


def textbook(matrix: np.ndarray, rss: float) -> np.ndarray:
    n, p = matrix.shape
    scales = np.linalg.norm(matrix, axis=0)
    scaled = matrix / scales
    return np.sqrt(np.diag(rss / (n - p) * np.linalg.inv(scaled.T @ scaled))) / scales


@pytest.mark.parametrize("sizes", [(1.0, 1.0, 1.0), (1e-100, 1.0, 1e100), (1e5, 3e-7, 2.0)])
def test_standard_errors_are_the_textbook_formula(rng, sizes):
    matrix = rng.normal(size=(500, 3)) * np.array(sizes)
    errors, state = least_squares_stderr(matrix, 12.5, ["a", "b", "c"])
    assert state.rank == 3 and state.note is None
    assert np.allclose(errors, textbook(matrix, 12.5), rtol=1e-12, atol=0)
    assert state.condition == pytest.approx(conditioning(matrix, ["a", "b", "c"]).condition, rel=1e-12)


def test_standard_errors_factor_the_tall_jacobian_once(rng, monkeypatch):
    rows, p = 4000, 3
    matrix = rng.normal(size=(rows, p))
    tall = []
    for name in ("qr", "svd", "eigh", "lstsq", "matrix_rank", "inv", "pinv"):
        original = getattr(np.linalg, name)

        def counted(a, *args, _original=original, _name=name, **kwargs):
            if np.shape(a)[0] >= rows:
                tall.append(_name)
            return _original(a, *args, **kwargs)

        monkeypatch.setattr(np.linalg, name, counted)
    errors, state = least_squares_stderr(matrix, 3.0, ["a", "b", "c"])
    assert tall == ["qr"]
    assert errors is not None and state.rank == p


@pytest.mark.parametrize(("rows", "seed"), [(3, 0), (5000, 3), (5000, 14), (5000, 20), (70_001, 1)])
def test_residual_sum_of_squares_is_the_evaluators_sum(rows, seed):
    # Residuals of mixed sizes, where a correctly rounded sum of every square and
    # the evaluator's block sums can differ in the last digit (seeds 3, 14, 20 do).
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    y = 0.3 * x + 1.7 + rng.normal(size=rows) * rng.choice([1e-4, 1.0, 1e4], size=rows)
    for method in ("auto", "lm"):
        result = fit({"x": x, "y": y}, model="a*x + b", target="y", method=method)
        assert result.rss == result.cost  # the same sum of the same squares, bit for bit
        assert math.isfinite(result.rss)
        assert all(v is not None and v > 0 for v in result.stderr.values())


def test_standard_errors_too_large_for_memory_are_a_note_not_a_failure(rng, monkeypatch):
    from exprgrad import memory

    refuse = memory.too_large

    def too_large(need, what, how=""):
        return (
            f"{what} would need too much ({how})"
            if what.startswith("the Hessian")
            else refuse(need, what, how)
        )

    monkeypatch.setattr(memory, "too_large", too_large)
    x = rng.normal(size=(400, 24))
    y = (rng.random(400) < 1 / (1 + np.exp(-x @ np.linspace(-1, 1, 24)))).astype(float)
    columns = {f"x{j + 1}": x[:, j] for j in range(24)} | {"y": y}
    cost = "z = c + sum[j](w[j]*x[j]); sum(softplus(z) - y*z)"
    result = fit(columns, cost=cost, method="lbfgs", nll=True)
    assert result.converged, result.message
    assert all(v is None for v in result.stderr.values())
    assert (
        "no standard errors: the Hessian of the cost would need too much (25 x 25 x 8 bytes)"
        in result.message
    )


@pytest.mark.parametrize("method", ["auto", "gd", "lbfgs", "newton"])
@pytest.mark.parametrize(
    "form",
    [
        {"model": "a*x1 + b*x2 + c*x3 + d", "target": "y"},
        {"cost": "k in 1:2; mean((sum[k](dot(W[k,j], x[j])) - y)^2)"},
    ],
)
def test_fewer_rows_than_parameters_fit_without_standard_errors(method, form):
    columns = {
        "x1": np.array([1.0, 2.0, 0.5]),
        "x2": np.array([2.0, 1.0, 1.0]),
        "x3": np.array([3.0, 0.0, 2.0]),
        "y": np.array([1.0, 0.0, 1.0]),
    }
    result = fit(columns, method=method, max_iter=200, **form)
    assert math.isfinite(result.cost) and result.cost < 0.01  # from 2/3 or 2 at the start
    assert all(v is None for v in result.stderr.values())


@pytest.mark.parametrize("rows", [1, 4095, 4096, 4097, 10_000])
def test_csv_columns_are_the_tables_columns_across_block_edges(tmp_path, rng, rows):
    from exprgrad.fitting.data import load_csv

    table = np.round(rng.normal(size=(rows, 3)), 6)
    path = tmp_path / "t.csv"
    np.savetxt(path, table, delimiter=",", header="a,b,c", comments="", fmt="%.6f")
    columns = load_csv(path).columns
    for j, name in enumerate("abc"):
        assert np.array_equal(columns[name], table[:, j])
        assert columns[name].flags.c_contiguous and not columns[name].flags.writeable


def test_end_point_check_of_least_squares_factors_the_tall_jacobian_once(rng, monkeypatch):
    from exprgrad.fitting import optimality

    rows = 5000
    matrix = np.column_stack([rng.normal(size=rows), np.ones(rows), rng.normal(size=rows) ** 2])
    r = rng.normal(size=rows)
    projected = matrix @ np.linalg.lstsq(matrix, r, rcond=None)[0]
    want_cosine = np.linalg.norm(projected) / np.linalg.norm(r)
    want_step = -np.linalg.lstsq(matrix, r, rcond=None)[0]
    tall = []
    for name in ("qr", "svd", "lstsq", "matrix_rank", "pinv"):
        original = getattr(np.linalg, name)

        def counted(a, *args, _original=original, _name=name, **kwargs):
            if np.shape(a)[0] >= rows:
                tall.append(_name)
            return _original(a, *args, **kwargs)

        monkeypatch.setattr(np.linalg, name, counted)
    from scipy.linalg import lapack  # the factors' QR calls LAPACK itself

    def geqrf(a, *args, _original=lapack.dgeqrf, **kwargs):
        if np.shape(a)[0] >= rows:
            tall.append("qr")
        return _original(a, *args, **kwargs)

    monkeypatch.setattr(lapack, "dgeqrf", geqrf)
    cosine, step, _ = optimality._geometry(r, matrix)
    assert tall == ["qr"]
    assert cosine == pytest.approx(want_cosine, rel=1e-10)
    assert np.allclose(step, want_step, rtol=1e-10)
    assert optimality.residual_cosine(r, matrix) == cosine


def test_a_data_family_given_as_separate_arrays_is_read_in_place(rng):
    from exprgrad.backends.binding import _one_array
    from exprgrad.fitting import prepare

    columns = {f"x{j}": rng.normal(size=300) for j in range(1, 6)}
    columns["y"] = (rng.random(300) < 0.5).astype(float)
    cost = "z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)"
    family = prepare(columns, cost=cost).objective.columns["x"]
    assert _one_array([np.asarray(c) for c in family]) is not None  # no gathering per evaluation
    for j, column in enumerate(family, start=1):
        assert np.array_equal(column, columns[f"x{j}"])
    table = np.asfortranarray(np.column_stack([columns[f"x{j}"] for j in range(1, 6)]))
    views = {f"x{j}": table[:, j - 1] for j in range(1, 6)} | {"y": columns["y"]}
    assert prepare(views, cost=cost).objective.columns["x"][0].base is table  # already together: no copy
    assert fit(columns, cost=cost, method="lbfgs").params == fit(views, cost=cost, method="lbfgs").params


@pytest.mark.parametrize("model", ["a*x + b", "a*exp(b*x)"])
def test_auto_fits_a_sum_of_squares_whose_jacobian_would_not_fit_by_lbfgs(rng, monkeypatch, model):
    from exprgrad import memory

    refuse = memory.too_large

    def too_large(need, what, how=""):
        return (
            f"{what} would need too much ({how})"
            if what.startswith("the Jacobian")
            else refuse(need, what, how)
        )

    monkeypatch.setattr(memory, "too_large", too_large)
    x = rng.uniform(0, 1, size=500)
    y = 1.5 * np.exp(0.7 * x) + rng.normal(scale=0.01, size=500)
    result = fit({"x": x, "y": y}, model=model, target="y", init={"a": 1, "b": 0.5})
    assert result.method == "lbfgs"
    assert result.converged, result.message
    assert all(v is None for v in result.stderr.values())
    assert "no standard errors: the Jacobian of the residuals would need too much (500 x 2 x 8 bytes)" in (
        result.message
    )
