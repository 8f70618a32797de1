"""Names loaded on first use: found, cached, listed, and refused when unknown."""

from __future__ import annotations

import pytest

from moby_al_plugin._lazy import lazy_attributes


def test_a_name_is_imported_once_then_cached_and_listed():
    namespace: dict = {"__name__": "moby_al_plugin"}
    getattr_, dir_ = lazy_attributes("moby_al_plugin", {"check_integer": "_validation"}, namespace)
    from moby_al_plugin._validation import check_integer

    assert getattr_("check_integer") is check_integer
    assert namespace["check_integer"] is check_integer  # later look-ups skip getattr_
    assert "check_integer" in dir_() and "__name__" in dir_()
    with pytest.raises(AttributeError, match="'moby_al_plugin' has no attribute 'nothing'"):
        getattr_("nothing")
