"""Shared fixtures: a click runner, a seeded random generator, sample paths, a PATH without dot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261128)


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def no_dot(monkeypatch, tmp_path):
    """A PATH without Graphviz's programs."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
