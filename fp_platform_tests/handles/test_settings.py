"""Typed settings: every plane's tuning values load in every profile, and a wrong key or type fails at load."""

import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from fp_platform.handles import PROFILES, HandleError, handles
from fp_platform.handles.settings import Settings, knob

PACKAGE = Path(__file__).resolve().parents[2] / "fp_platform"


def _all_settings() -> list[type[Settings]]:
    for path in PACKAGE.glob("*/settings.py"):
        if path.parent.name != "handles":
            importlib.import_module(f"fp_platform.{path.parent.name}.settings")
    return [c for c in Settings.__subclasses__() if c.__module__.startswith("fp_platform.")]


def test_every_plane_settings_load_in_every_profile():
    found = _all_settings()
    assert len(found) >= 8, found
    for cls in found:
        for profile in PROFILES:
            loaded = cls.load(handles(profile))
            assert set(vars(loaded)) == set(cls.knobs()), cls


def test_values_come_from_the_profile():
    from fp_platform.control.settings import WspSettings

    assert WspSettings.load(handles("local")).max_inflight == handles("local").get("WSP_MAX_INFLIGHT")
    assert WspSettings.load(handles("dev_full")).max_inflight == handles("dev_full").get("WSP_MAX_INFLIGHT")
    assert WspSettings.load(handles("local")).max_inflight != WspSettings.load(handles("dev_full")).max_inflight


def test_a_misspelt_knob_fails_at_load():
    @dataclass(frozen=True)
    class Misspelt(Settings):
        batch_size: int = knob("WSP_BATCH_SIZ")

    with pytest.raises(HandleError, match="WSP_BATCH_SIZ is not in"):
        Misspelt.load(handles("local"))


def test_a_value_of_the_wrong_type_fails_at_load():
    @dataclass(frozen=True)
    class WrongType(Settings):
        batch_size: bool = knob("WSP_BATCH_SIZE")

    @dataclass(frozen=True)
    class NotANumber(Settings):
        stop: int = knob("WSP_STOP_ON_NONRETRYABLE")

    with pytest.raises(HandleError, match="WSP_BATCH_SIZE is 500 .int. in profile local; its setting expects bool"):
        WrongType.load(handles("local"))
    with pytest.raises(HandleError, match="expects int"):
        NotANumber.load(handles("local"))
