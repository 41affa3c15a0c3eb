"""Contractions: the sum over some axes of a product of arrays, as matrix products.

In: the factors of a product, each an array with one label per axis (an
index, or the evaluator's row-block labels), the labels the result keeps (in
its axis order), and a nominal size per label for choosing the order.
Out: the array over the kept labels. Factors are taken two at a time: a pair
that shares a label nothing else needs is one ``np.matmul`` (BLAS, batched
over the labels both keep); a pair that shares none is a broadcast product.
The product over every label of every factor is never formed (the 2-layer
network's ``sum[j](W[k,j]*x[j])`` is one rows x 50 by 50 x 16 product).
Must not: choose an order from anything but the labels and their nominal
sizes: one plan serves every chunk, so a row's numbers come from the same
operations whatever the chunk size.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from .. import kernels

Labels = tuple[Hashable, ...]


def plan(factors: Sequence[Labels], kept: Labels, sizes: Mapping[Hashable, int]) -> list[tuple]:
    """The steps that contract ``factors`` (their labels) to ``kept``.

    Each step is ("sum", item, labels) — sum an item over labels no other
    item keeps — or ("pair", i, j) — replace items i and j by their
    contraction, appended last. Labels without indices are items too.
    """
    items = [tuple(f) for f in factors]
    steps: list[tuple] = []
    while True:
        for position, labels in enumerate(items):
            others = {label for k, item in enumerate(items) if k != position for label in item}
            lone = tuple(label for label in labels if label not in kept and label not in others)
            if lone:
                steps.append(("sum", position, lone))
                items[position] = tuple(label for label in labels if label not in lone)
        if len(items) == 1:
            return steps
        best = None
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                result = _pair_labels(items, i, j, kept)
                cost = math.prod(sizes.get(label, 1) for label in result)
                grows = not (set(items[i]) >= set(result) or set(items[j]) >= set(result))
                key = (cost, grows, i, j)
                if best is None or key < best[0]:
                    best = (key, i, j, result)
        _, i, j, result = best
        steps.append(("pair", i, j))
        items = [item for k, item in enumerate(items) if k not in (i, j)] + [result]


def _pair_labels(items: list[Labels], i: int, j: int, kept: Labels) -> Labels:
    """The labels of items i and j contracted: their union less shared labels nothing else needs."""
    others = {label for k, item in enumerate(items) if k not in (i, j) for label in item}
    union = items[i] + tuple(label for label in items[j] if label not in items[i])
    return tuple(
        label
        for label in union
        if label in kept or label in others or not (label in items[i] and label in items[j])
    )


def run(steps: list[tuple], arrays: Sequence, factors: Sequence[Labels], kept: Labels) -> np.ndarray:
    """Carry out ``plan``'s steps on ``arrays`` (axes labelled by ``factors``): the array over ``kept``."""
    items = [(np.asarray(a), tuple(labels)) for a, labels in zip(arrays, factors, strict=True)]
    for step in steps:
        if step[0] == "sum":
            _, position, lone = step
            array, labels = items[position]
            items[position] = (
                _summed(array, labels, lone),
                tuple(label for label in labels if label not in lone),
            )
        else:
            _, i, j = step
            others = {label for k, (_, item) in enumerate(items) if k not in (i, j) for label in item}
            pair = _contract(items[i], items[j], set(kept) | others)
            items = [item for k, item in enumerate(items) if k not in (i, j)] + [pair]
    ((array, labels),) = items
    if labels == kept:
        return array
    # In kept order and contiguous: what reads it next (elementwise kernels, a
    # block sum) runs at full speed; the copy is the size of the result.
    return np.ascontiguousarray(np.transpose(array, tuple(labels.index(label) for label in kept)))


def _contract(left: tuple, right: tuple, needed: set) -> tuple:
    """Two labelled arrays multiplied, summed over the labels they share that ``needed`` lacks."""
    a, la = left
    b, lb = right
    shared = [label for label in la if label in lb]
    summed = [label for label in shared if label not in needed]
    if not summed:  # nothing to sum: a broadcast product over the union
        # in the axis order of the operand with more axes, so the large one is
        # read in its own order (v[k] times a rows x k array stays rows x k)
        first, second = (lb, la) if len(lb) > len(la) else (la, lb)
        labels = first + tuple(label for label in second if label not in first)
        return _aligned(a, la, labels) * _aligned(b, lb, labels), labels
    batch = [label for label in shared if label in needed]
    a_free = [label for label in la if label not in lb]
    b_free = [label for label in lb if label not in la]
    sizes = dict(zip(la, a.shape, strict=True)) | dict(zip(lb, b.shape, strict=True))

    def grouped(array, labels, groups):
        order = [labels.index(label) for group in groups for label in group]
        view = np.transpose(array, order)
        shape = [math.prod(sizes[label] for label in group) for group in groups if group or batch]
        return view.reshape(shape) if len(shape) != view.ndim or shape != list(view.shape) else view

    labels = tuple(batch + a_free + b_free)
    work = math.prod(sizes[label] for label in a_free + summed + b_free)
    if (not a_free or not b_free) and (len(batch) > 1 or not (a_free or b_free)):
        # One side's labels within the other's: the product is the size of the
        # larger, summed (a batched matmul over several labels would merge them
        # into one batch, whose BLAS calls round differently as its length changes).
        both = la + tuple(label for label in lb if label not in la)
        product = _aligned(a, la, both) * _aligned(b, lb, both)
        return _summed(product, both, summed), tuple(label for label in both if label not in summed)
    if batch and (work < _SMALLEST_PRODUCT or len(batch) > 1):  # numpy's own loop
        letters = {label: chr(97 + k) for k, label in enumerate(sizes)}
        spec = "".join(letters[x] for x in la) + "," + "".join(letters[x] for x in lb)
        return np.einsum(spec + "->" + "".join(letters[x] for x in labels), a, b), labels
    if batch:  # (batch, m, k) @ (batch, k, n): one BLAS product per batch entry
        product = np.matmul(grouped(a, la, [batch, a_free, summed]), grouped(b, lb, [batch, summed, b_free]))
    else:  # matrix or vector products; an empty group is left out (gemv, dot)
        product = np.matmul(grouped(a, la, [a_free, summed]), grouped(b, lb, [summed, b_free]))
    return np.reshape(product, [sizes[label] for label in labels]), labels


def _summed(array: np.ndarray, labels: Labels, summed) -> np.ndarray:
    """``array`` summed over the axes of ``summed`` (the other axes keep their order)."""
    axes = [labels.index(label) for label in summed]
    if len(axes) == 1:
        return kernels.sum_along(array, axes[0])
    return np.sum(array, axis=tuple(axes))


# Below this many multiply-adds per batch entry, one BLAS call per entry costs
# more than numpy's einsum loop over the whole batch.
_SMALLEST_PRODUCT = 256


def _aligned(array: np.ndarray, labels: Labels, target: Labels) -> np.ndarray:
    """``array`` as a view over ``target``'s axes: its own in target order, length 1 for the rest."""
    order = [labels.index(label) for label in target if label in labels]
    view = np.transpose(array, order) if order != list(range(len(order))) else array
    return view[tuple(slice(None) if label in labels else None for label in target)]
