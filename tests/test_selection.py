"""selection: the variable nodes a list of names selects (names, families, members, unknown names)."""

from __future__ import annotations

import pytest

from exprgrad import build, graph
from exprgrad.errors import OptionError
from exprgrad.passes.diff import diff
from exprgrad.selection import select

A, X = graph.var("a"), graph.var("x", per_row=True)


def _family_function():
    thetas = [graph.var(f"theta[{i}]") for i in (10, 2, 0, 1)]
    return build.mul(build.add(*thetas), A, X)


def test_select_families_names_and_defaults():
    f = _family_function()
    nodes, warnings = select(f, ["theta"])
    assert [n.name for n in nodes] == ["theta[0]", "theta[1]", "theta[2]", "theta[10]"]
    assert warnings == []
    nodes, _ = select(f, [])
    assert [n.name for n in nodes] == ["a", "theta[0]", "theta[1]", "theta[2]", "theta[10]"]
    nodes, _ = select(f, [" a", "x", "theta[2]", "a", ""])
    assert [n.name for n in nodes] == ["a", "x", "theta[2]"]
    assert nodes[1].per_row


def test_select_unknown_name_warns_and_gives_zero():
    f = _family_function()
    nodes, warnings = select(f, ["c", "theta[7]"])
    assert warnings == [
        "'c' does not occur in the function; its derivative is 0",
        "'theta[7]' does not occur in the function; its derivative is 0",
    ]
    assert all(d is build.ZERO for d in diff(f, nodes).values())
    with pytest.raises(OptionError):
        select(f, ["2x"])


def test_select_default_and_its_errors_name_no_command_line_option():
    f = _family_function()
    nodes, _ = select(f, [" ", ""], default="variables")
    assert [n.name for n in nodes] == ["a", "theta[0]", "theta[1]", "theta[2]", "theta[10]", "x"]
    with pytest.raises(OptionError, match="unknown default 'rows'") as bad_default:
        select(f, [], default="rows")
    with pytest.raises(OptionError, match="not a variable name") as bad_name:
        select(f, ["theta[a]"])
    for raised in (bad_default, bad_name):
        assert "--" not in str(raised.value)  # the library speaks Python; the CLI names flags


def test_a_member_of_an_index_family_asks_for_the_family():
    from exprgrad import build, graph, ops

    if not hasattr(build, "reduce"):
        pytest.skip("graph indices not available")
    j = graph.index("j")
    output = build.call(
        "mean", build.reduce(ops.SUM, build.mul(graph.var("w", (j,)), graph.var("x", (graph.ROWS, j))), (j,))
    )
    assert select(output, ["w"])[0] == [graph.var("w", (j,))]
    with pytest.raises(
        OptionError, match=r"'w\[3\]' is a member of the family w\[j\]: select the family, 'w'"
    ):
        select(output, ["w[3]"])
