"""Exact expectations: `pytest.raises` accepts any subclass; these do not."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TypeVar

import pytest

E = TypeVar("E", bound=BaseException)


@contextlib.contextmanager
def raises_exactly(cls: type[E], match: str | None = None) -> Iterator[pytest.ExceptionInfo[E]]:
    """Like `pytest.raises(cls, match=...)`, but a subclass of `cls` fails the test: a test
    that names the class must say which error the user sees."""
    with pytest.raises(cls) as info:
        yield info
    assert type(info.value) is cls, f"{type(info.value).__name__} raised, not {cls.__name__}"
    if match is not None:
        assert re.search(match, str(info.value)), f"{match!r} not in {str(info.value)!r}"
