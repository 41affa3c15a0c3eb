"""Writes the GLM reference problems of tests/test_fit_honesty.py (run by hand; needs statsmodels).

Each problem: a CSV of the columns it uses (statsmodels' bundled data sets,
first rows only where a set is large) and, in problems.json, the exprgrad
cost (the negative log-likelihood up to a constant) with the coefficients
and standard errors of statsmodels' own GLM fit (IRLS, converged to 1e-12).
The tests read only the CSVs and the JSON. Usage: python tests/data/glm/export.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import statsmodels.api as sm

HERE = Path(__file__).resolve().parent

# name: (data set, family, response, predictors, rows); rows N keeps the
# first N, -N every N-th (fair is sorted by its response); a response
# (successes, failures) is a binomial count.
PROBLEMS = {
    "cpunish": (
        "cpunish",
        "poisson",
        "EXECUTIONS",
        ["INCOME", "PERPOVERTY", "PERBLACK", "VC100k96", "SOUTH", "DEGREE"],
        None,
    ),
    "committee": (
        "committee",
        "poisson",
        "BILLS104",
        ["SIZE", "SUBS", "STAFF", "PRESTIGE", "BILLS103"],
        None,
    ),
    "randhie": (
        "randhie",
        "poisson",
        "mdvis",
        ["lncoins", "idp", "lpi", "fmde", "physlm", "disea", "hlthg", "hlthf", "hlthp"],
        2000,
    ),
    "strikes": ("strikes", "poisson", "duration", ["iprod"], None),
    "cancer": ("cancer", "poisson", "cancer", ["population"], None),
    "spector": ("spector", "binomial", "GRADE", ["GPA", "TUCE", "PSI"], None),
    "fair": (
        "fair",
        "binomial",
        "affair",
        ["rate_marriage", "age", "yrs_married", "children", "religious", "educ"],
        -3,
    ),
    "anes96": (
        "anes96",
        "binomial",
        "vote",
        ["logpopul", "TVnews", "selfLR", "ClinLR", "DoleLR", "PID", "age", "educ", "income"],
        None,
    ),
    "heart": ("heart", "binomial", "censors", ["age", "survival"], None),
    "star98": (
        "star98",
        "binomial",
        ("NABOVE", "NBELOW"),
        [
            "LOWINC",
            "PERASIAN",
            "PERBLACK",
            "PERHISP",
            "PCTCHRT",
            "PCTYRRND",
            "PERMINTE",
            "AVYRSEXP",
            "AVSALK",
            "PERSPENK",
            "PTRATIO",
            "PCTAF",
        ],
        None,
    ),
}


def main() -> None:
    entries = []
    for name, (source, family, response, predictors, limit) in PROBLEMS.items():
        frame = getattr(sm.datasets, source).load_pandas().data
        if name == "fair":
            frame = frame.assign(affair=(frame["affairs"] > 0).astype(float))
        if name == "cpunish":
            frame = frame.assign(VC100k96=np.log(frame["VC100k96"]))  # statsmodels' own example logs it
        if limit is not None:
            frame = frame.iloc[:limit] if limit > 0 else frame.iloc[::-limit]
        responses = list(response) if isinstance(response, tuple) else [response]
        frame = frame[[*responses, *predictors]].astype(float)
        columns = {old: old.lower() for old in frame.columns}
        frame = frame.rename(columns=columns)
        design = sm.add_constant(frame[[columns[p] for p in predictors]].to_numpy(), prepend=True)
        link = sm.families.Poisson() if family == "poisson" else sm.families.Binomial()
        if len(responses) == 2:
            endog = frame[[columns[r] for r in responses]].to_numpy()
        else:
            endog = frame[columns[responses[0]]].to_numpy()
        result = sm.GLM(endog, design, family=link).fit(tol=1e-13, maxiter=200)
        params = ["b0", *[f"b{j + 1}" for j in range(len(predictors))]]
        eta = " + ".join(["b0", *[f"b{j + 1}*{columns[p]}" for j, p in enumerate(predictors)]])
        if family == "poisson":
            cost = f"sum(exp({eta}) - {columns[responses[0]]}*({eta}))"
        elif len(responses) == 2:
            s, f = (columns[r] for r in responses)
            cost = f"sum(({s} + {f})*softplus({eta}) - {s}*({eta}))"
        else:
            cost = f"sum(softplus({eta}) - {columns[responses[0]]}*({eta}))"
        frame.to_csv(HERE / f"{name}.csv", index=False, float_format="%.17g")
        entries.append(
            {
                "name": name,
                "source": f"statsmodels.datasets.{source}"
                + (
                    ""
                    if limit is None
                    else f" (first {limit} rows)"
                    if limit > 0
                    else f" (every {-limit}th row)"
                ),
                "family": family,
                "csv": f"{name}.csv",
                "cost": cost,
                "params": params,
                "coefficients": [float(v) for v in result.params],
                "stderr": [float(v) for v in result.bse],
                "iterations": int(result.fit_history["iteration"]),
            }
        )
        print(name, len(frame), "rows", len(params), "params")
    document = {
        "generated_by": "tests/data/glm/export.py with statsmodels " + sm.__version__,
        "problems": entries,
    }
    (HERE / "problems.json").write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main()
