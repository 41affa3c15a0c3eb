"""The fit's parameter vector over families: layout, names, starts, symmetry."""

from __future__ import annotations

import numpy as np
import pytest

from exprgrad.fitting.members import SCALAR_SPREAD, Block, Members, arrange
from exprgrad.names import natural_key


def network() -> Members:
    # c, v[k], W[k,j] with k 1..3, j 1..4: written axes W[k,j].
    return Members.of(
        ["c"],
        {"v": (("k",), ((1, 2, 3),)), "W": (("k", "j"), ((1, 2, 3), (1, 2, 3, 4)))},
    )


def test_member_names_follow_natural_order_and_written_axes():
    members = network()
    assert [b.name for b in members.blocks] == ["W", "c", "v"]  # natural order: capitals first
    assert members.size == 12 + 1 + 3
    assert members.names[:5] == ["W[1,1]", "W[1,2]", "W[1,3]", "W[1,4]", "W[2,1]"]
    assert members.names[11:] == ["W[3,4]", "c", "v[1]", "v[2]", "v[3]"]
    assert members.names == sorted(members.names, key=natural_key)


def test_labels_name_members_not_positions():
    members = Members.of([], {"w": (("j",), ((10, 20, 30),))})
    assert members.names == ["w[10]", "w[20]", "w[30]"]


def test_family_sorts_before_a_longer_scalar_name_and_ten_after_two():
    members = Members.of(["w2", "a"], {"w": (("j",), (tuple(range(1, 12)),))})
    assert members.names[0] == "a"
    assert members.names[1:4] == ["w[1]", "w[2]", "w[3]"]
    assert members.names[10:12] == ["w[10]", "w[11]"]
    assert members.names[-1] == "w2"


def test_vector_values_and_flat_round_trip():
    members = network()
    x = np.arange(members.size, dtype=float)
    values = members.values(x)
    assert values["c"] == 12.0
    assert values["v"].tolist() == [13.0, 14.0, 15.0]
    assert values["W"].shape == (3, 4)  # written axes (k, j)
    assert values["W"][1, 2] == x[members.names.index("W[2,3]")]
    assert np.array_equal(members.vector(values), x)
    flat = members.flat(x)
    assert list(flat) == members.names and flat["W[2,3]"] == values["W"][1, 2]


def test_vector_broadcasts_one_number_to_every_member():
    members = network()
    x = members.vector({"c": 1, "v": 0.5, "W": 0.25})
    assert set(x[:12]) == {0.25} and x[12] == 1 and set(x[13:]) == {0.5}


def test_scalar_only_layout_is_the_parameter_list():
    members = Members.of(["b", "a", "theta[10]", "theta[2]"])
    assert members.names == ["a", "b", "theta[2]", "theta[10]"]
    assert not members.has_families
    assert members.values(np.array([1.0, 2, 3, 4])) == {"a": 1.0, "b": 2.0, "theta[2]": 3.0, "theta[10]": 4.0}


def test_start_fills_families_members_and_reports_defaults():
    members = network()
    x0, defaulted, unused = members.start({"W": 0.1, "W[2,3]": 5.0, "v[2]": 1.0, "q": 3.0})
    values = members.values(x0)
    assert values["W"][1, 2] == 5.0 and values["W"][0, 0] == 0.1 and values["W"][2, 3] == 0.1
    assert values["v"].tolist() == [0.0, 1.0, 0.0]
    assert defaulted == ["c", "v[1]", "v[3]"]  # W has values for every member
    assert unused == ["q"]
    _, defaulted, _ = members.start({})
    assert defaulted == ["W", "c", "v"]  # a family without any value is named once


def test_random_start_is_reproducible_and_scaled_by_fan_in():
    members = Members.of(["c"], {"W": (("k", "j"), (tuple(range(1, 41)), tuple(range(1, 101))))})
    first, defaulted, _ = members.start({}, seed=3)
    again, _, _ = members.start({}, seed=3)
    other, _, _ = members.start({}, seed=4)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert defaulted == []
    w = members.values(first)["W"]
    assert abs(w.std() - 1 / np.sqrt(100)) < 0.01  # fan-in: the 100 labels of j
    assert len(np.unique(w[:, 0])) == 40  # every unit k different
    # An explicit value wins over the random one.
    fixed, _, _ = members.start({"c": 2.0, "W[1,1]": 0.0}, seed=3)
    assert fixed[0] == 0.0 and fixed[-1] == 2.0 and np.array_equal(fixed[1:-1], first[1:-1])


def test_random_start_of_a_scalar_model():
    members = Members.of(["a", "b"])
    x, _, _ = members.start({}, seed=0)
    assert x.shape == (2,) and np.all(x != 0) and np.all(np.abs(x) < 6 * SCALAR_SPREAD)


def test_symmetric_units_are_reported_with_the_family_and_the_way_out():
    members = network()
    x = members.vector({"c": 0, "v": 0.1, "W": 0.1})
    gradient = members.vector({"c": 1.0, "v": 0.3, "W": np.tile([1.0, 2, 3, 4], (3, 1))})
    notes = members.symmetric(x, gradient)
    assert len(notes) == 2
    assert notes[0].startswith("W[k,j] starts symmetric: all 3 units along k have equal start values")
    assert notes[1].startswith("v[k] starts symmetric: all 3 members along k")
    assert "init='random'" in notes[0]


def test_units_told_apart_by_values_or_gradients_are_not_reported():
    members = network()
    x = members.vector({"c": 0, "v": 0.0, "W": 0.0})
    # Different gradients per member of v and per unit of W: the gradient separates them.
    gradient = members.vector({"c": 0, "v": np.array([1.0, 2, 3]), "W": np.arange(12.0).reshape(3, 4)})
    assert members.symmetric(x, gradient) == []
    x = members.random(1)
    assert members.symmetric(x, np.zeros(members.size)) == []


def test_partly_symmetric_units_are_named():
    members = Members.of([], {"v": (("k",), ((1, 2, 3, 4),))})
    x = np.array([0.0, 0.0, 1.0, 2.0])
    notes = members.symmetric(x, np.array([5.0, 5.0, 1.0, 1.0]))
    assert notes and "the members k = 1, 2 have" in notes[0]


def test_arrange_transposes_canonical_axes_to_written_and_broadcasts():
    value = np.arange(6.0).reshape(2, 3)  # axes (j, k), canonical
    out = arrange(value, ("j", "k"), ("k", "j"), (3, 2))
    assert np.array_equal(out, value.T)
    assert np.array_equal(arrange(2.0, (), ("k",), (3,)), [2.0, 2.0, 2.0])
    rows = arrange(np.array([1.0, 2.0]), ("#rows",), ("#rows", "j"), (2, 3))
    assert rows.tolist() == [[1, 1, 1], [2, 2, 2]]
    with pytest.raises(ValueError):
        arrange(value, ("j", "m"), ("k", "j"), (3, 2))


def test_jacobian_columns_are_the_members_in_vector_order():
    members = network()
    block = members.block("W")
    # d r/d W[k,j] = h(row) * x[j]: axes (#rows, j, k) canonical.
    value = np.arange(2 * 4 * 3, dtype=float).reshape(2, 4, 3)
    columns = members.jacobian_columns(block, value, ("#rows", "j", "k"), 2)
    assert columns.shape == (2, 12)
    assert columns[1, block.member_names().index("W[2,3]")] == value[1, 2, 1]


def test_block_written_and_shape():
    block = Block("W", ("k", "j"), ((1, 2), (1, 2, 3)))
    assert block.written() == "W[k,j]" and block.shape == (2, 3) and block.size == 6
