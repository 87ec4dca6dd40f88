"""The one conversion to plain JSON data, and the callers that rely on its options."""

from __future__ import annotations

import json
import math
from enum import Enum

import numpy as np

from vlmrm_core.plain_json import to_plain_json
from vlmrm_core.reward.spec import ModelRef, RewardSpec


class Colour(Enum):
    RED = "red"


def test_containers_enums_and_numpy_become_plain() -> None:
    value = {
        "enum": Colour.RED,
        "tuple": (1, (2.5, "x")),
        "array": np.arange(4, dtype=np.int16).reshape(2, 2),
        "scalars": [np.float32(0.5), np.int64(3), np.bool_(True)],
        7: None,
        Colour.RED: "enum key",
    }
    plain = to_plain_json(value)
    assert plain == {
        "enum": "red",
        "tuple": [1, [2.5, "x"]],
        "array": [[0, 1], [2, 3]],
        "scalars": [0.5, 3, True],
        "7": None,
        "red": "enum key",
    }
    assert [type(v) for v in plain["scalars"]] == [float, int, bool]
    assert json.loads(json.dumps(plain)) == plain


def test_non_finite_floats_kept_or_null_and_other_types() -> None:
    values = [float("nan"), np.float64("inf"), -math.inf, 1.0]
    kept = to_plain_json(values)
    assert math.isnan(kept[0]) and kept[1:] == [math.inf, -math.inf, 1.0]
    assert to_plain_json(values, non_finite="null") == [None, None, None, 1.0]
    marker = object()
    assert to_plain_json({"x": marker})["x"] is marker
    assert to_plain_json({"x": marker}, other=repr)["x"] == repr(marker)


def test_spec_dicts_are_plain_json() -> None:
    spec = RewardSpec(("goal",), ("base",), alpha=0.5, kind="regularized")
    data = spec.to_dict()
    assert data["goal_prompts"] == ["goal"] and type(data["goal_prompts"]) is list
    assert data["kind"] == "regularized" and type(data["kind"]) is str
    assert "weights" not in data
    assert json.loads(json.dumps(data)) == data
    assert RewardSpec.from_dict(data) == spec
    adapted = RewardSpec(("goal",), kind="adapted", weights=(0.25, -0.5), bias=0.125)
    assert adapted.to_dict()["weights"] == [0.25, -0.5]
    ref = ModelRef("ViT-B-32", "laion2b_s34b_b79k").to_dict()
    assert all(type(v) in (str, type(None)) for v in ref.values())


def test_the_store_serialiser_writes_strict_json() -> None:
    from vlmrm_core.store._sql import json_dumps

    assert json_dumps({"a": np.float32("nan"), "b": (np.int64(2),)}) == '{"a": null, "b": [2]}'
