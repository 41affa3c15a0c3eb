"""Names -> variable nodes: which variables of a function a list of names selects.

In: a function's output node and names as a caller writes them: a variable
``a``, a family ``theta`` (every ``theta[i]`` the function uses), a member
``theta[2]`` (``W[2,3]``: its commas are its own, not a list's), an index
family as written (``w[j]``: the family ``w``), a data column. Out: the
variable nodes (``graph.var`` leaves) that ``passes.diff`` and the checks
take, and warnings for names the function does not use; ``fill_families``: a value given for a family set on each member.
Must not: differentiate, evaluate or print, or name a command-line option
(the library speaks Python; the CLI says which flag the names came from).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import graph
from .errors import OptionError
from .graph import Node

# ``a``, ``θ``, ``x_2``, ``theta[3]``, ``W[2,3]``, ``w[j]``: a variable, a family or a member.
_SUBSCRIPT = r"(\d+|[^\W\d]\w*)"
_VARIABLE_NAME = re.compile(rf"^[^\W\d]\w*(\[{_SUBSCRIPT}(,{_SUBSCRIPT})*\])?$")

DEFAULTS = ("parameters", "variables")


def select(
    output: Node,
    names: Sequence[str],
    *,
    default: str = "parameters",
) -> tuple[list[Node], list[str]]:
    """The variable nodes of ``output`` that ``names`` select, and warnings to show.

    Args:
        output: the function's graph.
        names: names as typed: ``a``, a family ``theta`` (every theta[i] of
            the function, in natural order), a member ``theta[2]``, or a data
            column. Blank entries are ignored; repeats count once.
        default: what no names select: "parameters" (every scalar variable)
            or "variables" (data columns too), in natural order.

    Returns:
        (variable nodes, warning strings). A name the function does not use
        gives a warning and a scalar variable node, whose derivative is 0.

    Raises:
        OptionError: a name that is not a variable name, or a bad default.
    """
    present = graph.variables([output])
    names = [name for name in _rejoined([name.strip() for name in names]) if name]
    if not names:
        if default not in DEFAULTS:
            raise OptionError(f"unknown default '{default}' (choose parameters or variables)")
        by_name = {v.name: v for v in present}  # a family used as b[k] and b[k2] is selected once
        return list(
            {v.name: by_name[v.name] for v in present if default == "variables" or not v.per_row}.values()
        ), []
    by_name = {v.name: v for v in present}
    families: dict[str, list[Node]] = {}
    for v in present:
        if "[" in v.name:
            families.setdefault(v.family, []).append(v)
    chosen: dict[Node, None] = {}  # an ordered set: nodes hash by identity
    warnings: list[str] = []
    for name in names:
        if not _VARIABLE_NAME.match(name):
            raise OptionError(f"'{name}' is not a variable name (expected e.g. a, theta or theta[0])")
        family = name.split("[", 1)[0]
        subscripts = name[len(family) + 1 : -1].split(",") if "[" in name else []
        if subscripts and getattr(by_name.get(family), "var_axes", ()):
            written = by_name[family]
            axes = ",".join(i.name for i in written.var_axes)
            if name == f"{family}[{axes}]":
                name = family  # the family as the program writes it: w[j]
            elif all(s.isdigit() for s in subscripts):
                raise OptionError(
                    f"'{name}' is a member of the family {family}[{axes}]: select the family, "
                    f"'{family}' (its derivative is one graph over {axes}, one value per member)"
                )
            else:
                raise OptionError(
                    f"'{name}' is not how the family {family}[{axes}] is written: select it as "
                    f"'{family}' (or '{family}[{axes}]')"
                )
        elif not all(s.isdigit() for s in subscripts):
            raise OptionError(f"'{name}' is not a variable name (expected e.g. a, theta or theta[0])")
        if name in by_name:
            selected = [by_name[name]]
        elif name in families:
            selected = families[name]  # already in natural order
        else:
            _refuse_member(name, by_name, families)
            warnings.append(f"'{name}' does not occur in the function; its derivative is 0")
            selected = [graph.var(name)]
        chosen.update(dict.fromkeys(selected))
    return list(chosen), warnings


# x1, x_2: how data columns name a member of the family x (labels are whole numbers).
_SUFFIXED = re.compile(r"^([^\W\d]\w*?)_?(\d+)$")


def _refuse_member(name: str, by_name: dict[str, Node], families: dict[str, list[Node]]) -> None:
    """An OptionError for ``x1``/``x_1`` when ``x`` is a family of the function, never a derivative of 0.

    A member's derivative is part of its family's (one graph over the index), so the family is
    what is selected; a family of written members (theta[1]) is selected member by member.
    """
    match = _SUFFIXED.match(name)
    if match is None:
        return
    family, label = match.group(1), match.group(2)
    written = by_name.get(family)
    axes = getattr(written, "var_axes", ())
    if len(axes) == 1:
        kind = "data family" if written.per_row else "family"
        raise OptionError(
            f"'{name}' is a member of the {kind} {family}[{axes[0].name}] (label {int(label)}): "
            f"select the family, '{family}' (its derivative is one graph over {axes[0].name}, "
            "one value per member)"
        )
    if axes:
        indices = ",".join(i.name for i in axes)
        raise OptionError(
            f"'{name}' names no member of the family {family}[{indices}]: select the family, '{family}'"
        )
    if family in families and f"{family}[{label}]" in by_name:
        raise OptionError(f"'{name}' does not occur in the function: select the member '{family}[{label}]'")


def _rejoined(names: Sequence[str]) -> list[str]:
    """Names split at every comma, with a member's own commas put back (``W[1`` and ``2]``: ``W[1,2]``)."""
    joined: list[str] = []
    for name in names:
        if joined and joined[-1].count("[") > joined[-1].count("]"):
            joined[-1] += "," + name
        else:
            joined.append(name)
    return joined


def fill_families(params: Sequence[str], values: dict[str, float]) -> None:
    """A family's value for each member: w=0 -> w[0]=0, w[1]=0, ... (in place).

    For each name in ``values`` that is not in ``params`` but has members
    there (``w`` with ``w[0]``, ``w[1]``), the name is replaced by each member
    that has no value of its own.
    """
    known = set(params)  # a family of 20,000 members: one look-up each, not a walk of the list
    for name in [n for n in values if n not in known and "[" not in n]:
        members = [p for p in params if p.startswith(name + "[")]
        if members:
            value = values.pop(name)
            for member in members:
                values.setdefault(member, value)
