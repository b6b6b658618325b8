"""Fixtures for ember.data tests: no test may reach the network or the user's cache."""

from __future__ import annotations

import urllib.request

import pytest


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("ember.data tests never download; patch download._fetch instead")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("EMBER_DATA", str(tmp_path_factory.mktemp("ember_data")))
