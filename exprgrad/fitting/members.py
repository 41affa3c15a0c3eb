"""A fit's parameter vector: scalar parameters and families, flattened and back.

In: the parameters of a cost, each a scalar (``c``) or a family with its
written axes and the labels of each axis (``W[k,j]``: k 1..16, j 1..50).
Out: ``Members``, the layout of the optimizer's vector: one name per member
(``c``, ``w[1]`` ... ``w[50]``, ``W[2,3]``), families in natural name order
and a family's members in the order of its written axes (the last axis
fastest, each axis in the order of its labels: ``W[1,1], W[1,2], ...``); the
conversions between the vector, the values a schedule takes ({name: float,
or an array in the family's written axes}) and flat member values
({"w[1]": 0.5}, the keys of a fit result); a random start; the check for a
start that is symmetric in a family's members.
Must not: evaluate, differentiate, print, or know the command line.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..backends.binding import arrange
from ..errors import Mention, OptionError
from ..names import natural_key

ROWS = "#rows"  # graph.ROWS.name: the data-row axis of a Jacobian
# The spread of a random start for a scalar parameter (a family's comes from its fan-in).
SCALAR_SPREAD = 0.1
# Gradients of two units closer than this (relative to the family's largest) count as equal.
SYMMETRY_TOL = 1e-12


@dataclass(frozen=True)
class Block:
    """One parameter's slice of the vector: a scalar (no axes) or a family."""

    name: str
    axes: tuple[str, ...] = ()
    labels: tuple[tuple, ...] = ()
    offset: int = 0

    @functools.cached_property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(labels) for labels in self.labels)

    @functools.cached_property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def is_family(self) -> bool:
        return bool(self.axes)

    def member_names(self) -> list[str]:
        """``w[1]``, ``W[2,3]``: one per member, in the vector's order; ``c`` for a scalar."""
        if not self.axes:
            return [self.name]
        grid = np.indices(self.shape).reshape(len(self.shape), -1).T
        return [
            f"{self.name}[{','.join(str(self.labels[a][i]) for a, i in enumerate(where))}]" for where in grid
        ]

    def written(self) -> str:
        """The family as written: ``W[k,j]`` (the name for a scalar)."""
        return f"{self.name}[{','.join(self.axes)}]" if self.axes else self.name


class Members:
    """The layout of a fit's parameter vector over its scalars and families.

    Attributes:
        blocks: one per parameter, in the vector's order.
        names: one name per member (``w[1]``), in the vector's order.
        size: the vector's length.
    """

    def __init__(self, blocks: Sequence[Block]):
        placed, offset = [], 0
        for block in blocks:
            placed.append(Block(block.name, tuple(block.axes), tuple(map(tuple, block.labels)), offset))
            offset += placed[-1].size
        self.blocks: tuple[Block, ...] = tuple(placed)
        self.size = offset
        self.names: list[str] = [name for block in self.blocks for name in block.member_names()]
        self._by_name = {block.name: block for block in self.blocks}
        self._position = {name: i for i, name in enumerate(self.names)}

    @classmethod
    def of(cls, params: Sequence[str], families: Mapping[str, tuple] | None = None) -> Members:
        """The layout of ``params`` (names), where ``families`` gives each family's
        (written axes, labels per axis); families sort with the scalars by name."""
        families = families or {}
        blocks = [
            Block(name, *families[name]) if name in families else Block(name)
            for name in sorted(set(params) | set(families), key=natural_key)
        ]
        return cls(blocks)

    @property
    def has_families(self) -> bool:
        return any(block.is_family for block in self.blocks)

    def block(self, name: str) -> Block:
        return self._by_name[name]

    def __len__(self) -> int:
        return self.size

    # ------------------------------------------------------------ conversions

    def values(self, x: np.ndarray) -> dict[str, float | np.ndarray]:
        """What a schedule takes: a float per scalar, an array (written axes) per family."""
        out: dict[str, float | np.ndarray] = {}
        for block in self.blocks:
            if block.is_family:
                out[block.name] = np.asarray(x[block.offset : block.offset + block.size], float).reshape(
                    block.shape
                )
            else:
                out[block.name] = float(x[block.offset])
        return out

    def flat(self, x: np.ndarray) -> dict[str, float]:
        """{member name: value}, in the vector's order: the params of a fit result."""
        return dict(zip(self.names, map(float, x)))

    def vector(self, values: Mapping[str, object]) -> np.ndarray:
        """The vector of ``values``: per scalar a number, per family an array in its
        written axes (or one number for every member)."""
        x = np.empty(self.size)
        for block in self.blocks:
            value = np.asarray(values[block.name], dtype=float)
            x[block.offset : block.offset + block.size] = np.broadcast_to(value, block.shape).reshape(-1)
        return x

    def start(
        self, given: Mapping[str, float], *, seed: int | None = None
    ) -> tuple[np.ndarray, list[str], list[str]]:
        """The starting vector from ``given`` values, and what it says.

        ``given`` holds member names (``w[3]``, ``c``) and family names (``w``:
        every member of w without a value of its own). The rest start at 0, or,
        with ``seed``, at ``random_start(seed)``.

        Returns:
            (x0, defaulted: the parameters or members that start at 0 for want of
            a value, in order, a family named once when none of its members has a
            value; unused: names in ``given`` that are neither members nor families).
        """
        x = self.random(seed) if seed is not None else np.zeros(self.size)
        chosen = np.zeros(self.size, dtype=bool)
        for name, value in given.items():
            block = self._by_name.get(name)
            if block is not None and block.is_family:
                for i in range(block.offset, block.offset + block.size):
                    if self.names[i] not in given:
                        x[i], chosen[i] = float(value), True
            elif name in self._position:
                x[self._position[name]], chosen[self._position[name]] = float(value), True
        unused = [name for name in given if name not in self._position and name not in self._by_name]
        defaulted = []
        if seed is None:
            for block in self.blocks:
                part = chosen[block.offset : block.offset + block.size]
                if block.is_family and not part.any():
                    defaulted.append(block.name)
                else:
                    defaulted += [n for n, c in zip(block.member_names(), part) if not c]
        return x, defaulted, unused

    def random(self, seed: int) -> np.ndarray:
        """A reproducible random vector: each member drawn from a normal distribution
        with mean 0 and standard deviation 1/sqrt(fan-in) for a family, where the
        fan-in is the size of the family's last written axis (W[k,j]: |j|, the inputs
        each unit k sums; w[j]: |j|), and SCALAR_SPREAD for a scalar. The same seed
        and layout give the same vector (numpy's default Generator, PCG64)."""
        generator = np.random.default_rng(seed)
        spread = np.empty(self.size)
        for block in self.blocks:
            fan_in = block.shape[-1] if block.is_family else 0
            spread[block.offset : block.offset + block.size] = (
                1.0 / math.sqrt(fan_in) if fan_in else SCALAR_SPREAD
            )
        return generator.standard_normal(self.size) * spread

    def array(self, name: str, value, origins: Mapping[str, str] | None = None) -> np.ndarray:
        """The values of family ``name`` as an array in its written axes, from a number
        (every member), nested lists of numbers in the written axes (labels in order),
        or a mapping label -> number (``{"1": 0.5}``, ``{"2,3": 1}`` for W[k,j]) giving
        every member. ``origins`` names the data family that gave an index its labels.

        Raises:
            OptionError: a wrong count ("w has 40 values, but j has 50 labels (those of
                x)"), a value that is not a finite number, an unknown or missing label.
        """
        block = self._by_name[name]
        origins = origins or {}
        if isinstance(value, Mapping):
            return self._from_labels(block, value)
        try:
            array = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise OptionError(f"{name}: the values must be numbers") from None
        if array.ndim == 0:
            array = np.full(block.shape, float(array))
        elif array.shape != block.shape:
            raise OptionError(f"{name} has {_count(array)}, but {_labelled(block, origins)}")
        if not np.all(np.isfinite(array)):
            raise OptionError(f"{name}: every value must be a finite number")
        return array

    def _from_labels(self, block: Block, value: Mapping) -> np.ndarray:
        names = block.member_names()
        position = {name[len(block.name) + 1 : -1].replace(" ", ""): i for i, name in enumerate(names)}
        flat = np.full(block.size, np.nan)
        for label, number in value.items():
            key = str(label).replace(" ", "")
            if key not in position:
                axes = ", ".join(f"{a} in {_span(labels)}" for a, labels in zip(block.axes, block.labels))
                raise OptionError(f"{block.name} has no member {block.name}[{key}] ({axes})")
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise OptionError(f"{block.name}[{key}]: the value must be a finite number")
            flat[position[key]] = float(number)
        missing = [names[i] for i in np.flatnonzero(np.isnan(flat))]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise OptionError(f"{block.name}: no value for {missing[0]}{more}")
        return flat.reshape(block.shape)

    def gradient(self, block: Block, value, axes: Sequence[str]) -> np.ndarray:
        """A derivative's value (a float, or an array whose axes are the index names
        ``axes``, as evaluation returns it) as ``block``'s flat members."""
        return arrange(value, axes, block.axes, block.shape).reshape(-1)

    def jacobian_columns(self, block: Block, value, axes: Sequence[str], rows: int) -> np.ndarray:
        """A per-row derivative's value as the (rows, members) columns of ``block``."""
        return arrange(value, axes, (ROWS, *block.axes), (rows, *block.shape)).reshape(rows, block.size)

    # ------------------------------------------------------------ symmetry

    def symmetric(
        self, x: np.ndarray, gradient: np.ndarray, data: Mapping[str, Sequence[np.ndarray]] | None = None
    ) -> list[str]:
        """A warning (a list of at most one) when the start is symmetric in some index.

        Labels k and k' of an index are alike when the whole unit at k equals the
        one at k': for every family that carries the index (W[k,j], b[k], v[k]),
        the members at k and at k' have exactly equal start values and gradients
        that agree to rounding (SYMMETRY_TOL of the family's largest gradient
        entry: the order of a matrix product's sums may differ per unit), and
        every data family on the index (``data``: {index: [labels x rows arrays]},
        Y[k]) has equal columns at k and k'. Such units stay equal under every
        gradient step (every hidden unit the same): the families are named, with
        a random start as the way out. Equal members of one family whose units
        differ elsewhere (b[k] of two classes of the same count, whose W[k,:]
        gradients or Y[k] columns differ) are not.
        """
        data = data or {}
        units: dict[tuple, list] = {}  # (index, labels) -> [(block, position, its unit rows)]
        for block in self.blocks:
            if not block.is_family:
                continue
            part = slice(block.offset, block.offset + block.size)
            values, slopes = x[part].reshape(block.shape), gradient[part].reshape(block.shape)
            scale = float(np.max(np.abs(slopes), initial=0.0))
            if not math.isfinite(scale):
                continue
            # Gradients on a grid of SYMMETRY_TOL * scale: rounding noise compares equal.
            rounded = np.round(slopes / (SYMMETRY_TOL * scale)) if scale > 0 else slopes
            for a, axis in enumerate(block.axes):
                count = block.shape[a]
                if count < 2:
                    continue
                rows = np.concatenate(
                    [
                        np.moveaxis(values, a, 0).reshape(count, -1),
                        np.moveaxis(rounded, a, 0).reshape(count, -1),
                    ],
                    axis=1,
                )
                units.setdefault((axis, block.labels[a]), []).append((block, a, rows))
        found, named = [], set()
        for (axis, labels), carried in units.items():
            count = len(labels)
            columns = [rows for _, _, rows in carried]
            if len(np.unique(np.concatenate(columns, axis=1), axis=0)) == count:
                continue  # the parameters alone tell every unit apart: the data columns need no look
            for array in data.get(axis, ()):
                if len(array) == count:  # a data family on the index: one id per distinct column
                    seen: dict[bytes, int] = {}
                    ids = [seen.setdefault(np.ascontiguousarray(c).tobytes(), len(seen)) for c in array]
                    columns.append(np.asarray(ids, dtype=float).reshape(count, 1))
            _, inverse, counts = np.unique(
                np.concatenate(columns, axis=1), axis=0, return_inverse=True, return_counts=True
            )
            if len(counts) == count:
                continue
            inverse = inverse.reshape(-1)
            alike = [labels[i] for i in range(count) if counts[inverse[i]] > 1]
            more = ", ..." if len(alike) > 3 else ""
            for block, _, _ in carried:
                if block.name in named:
                    continue  # one mention per family
                named.add(block.name)
                thing = "member" if len(block.axes) == 1 else "unit"
                if len(counts) == 1:
                    found.append(f"{block.written()} (all {count} {thing}s along {axis})")
                else:
                    found.append(
                        f"{block.written()} ({thing}s {axis} = {', '.join(map(str, alike[:3]))}{more})"
                    )
        if not found:
            return []
        return [
            (
                f"the start is symmetric in {_listed(found)}: equal start values and equal gradients, so the "
                f"fit cannot tell them apart and they stay equal; start from random values with {RANDOM_START}"
            )
        ]


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _count(array: np.ndarray) -> str:
    if array.ndim == 1:
        return f"{array.shape[0]} value{'s' if array.shape[0] != 1 else ''}"
    return f"values of shape {'x'.join(map(str, array.shape))}"


def _labelled(block: Block, origins: Mapping[str, str]) -> str:
    """'j has 50 labels (those of x)', or 'W[k,j] has 16x50 members' for several axes."""
    if len(block.axes) == 1:
        axis, count = block.axes[0], block.shape[0]
        source = f" (those of {origins[axis]})" if axis in origins else ""
        return f"{axis} has {count} label{'s' if count != 1 else ''}{source}"
    shape = "x".join(map(str, block.shape))
    return f"{block.written()} has {shape} members (nested lists in the order {', '.join(block.axes)})"


def _span(labels: tuple) -> str:
    if len(labels) > 3 and all(isinstance(label, int) for label in labels):
        return f"{labels[0]}..{labels[-1]}"
    return "{" + ", ".join(map(str, labels)) + "}"


# How a note names the random start: the library's init='random', the command line's --init random.
RANDOM_START = Mention("init", "random")
