"""The pipeline's fast event constructors (core.events._new_beat, _new_metrics,
_new_spectrum) make ordinary frozen events: equal to, hashing like, serialising like
and as immutable as the ones the classes' own constructors make."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from vagus.core.events import (
    Beat,
    Metrics,
    Spectrum,
    _new_beat,
    _new_metrics,
    _new_spectrum,
    event_from_json,
)

CASES: list[tuple[Any, type, tuple[Any, ...], dict[str, Any]]] = [
    (_new_beat, Beat, (12.5, 812.0), {}),
    (_new_beat, Beat, (12.5, 812.0, "missed", 406.0, True), {}),
    (_new_beat, Beat, (12.5, 812.0), {"artifact": "extra", "nn_ms": None}),
    (_new_metrics, Metrics, (30.0, 71.2, 41.0, 39.5, 52.1, 12.5, 0.0), {}),
    (_new_metrics, Metrics, (30.0, None, None, None, None, None, None, 845.0), {}),
    (_new_spectrum, Spectrum, (65.0, None, None, 410.0, 380.5, 1.077), {}),
    (
        _new_spectrum,
        Spectrum,
        (65.0, 0.1, 4.2, 410.0, 380.5, 1.077, (0.0, 0.0039), (1.5, 2.5)),
        {},
    ),
]


@pytest.mark.parametrize(("factory", "cls", "args", "kwargs"), CASES)
def test_factory_event_is_the_class_event(
    factory: Any, cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    made = factory(*args, **kwargs)
    want = cls(*args, **kwargs)
    assert type(made) is cls
    assert made == want and hash(made) == hash(want) and repr(made) == repr(want)
    assert made.to_json() == want.to_json()
    assert event_from_json(made.to_json()) == want
    assert pickle.loads(pickle.dumps(made)) == want
    assert copy.copy(made) == want and copy.deepcopy(made) == want
    first = dataclasses.fields(cls)[0].name
    assert dataclasses.replace(made, **{first: 99.0}) == dataclasses.replace(want, **{first: 99.0})


@pytest.mark.parametrize(("factory", "cls", "args", "kwargs"), CASES)
def test_factory_event_is_frozen(
    factory: Any, cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    made = factory(*args, **kwargs)
    for f in dataclasses.fields(cls):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, f.name, 1.0)
    assert made == cls(*args, **kwargs)  # unchanged


def test_factory_takes_the_class_parameters() -> None:
    with pytest.raises(TypeError):
        _new_beat(1.0)  # rr_ms missing, as Beat(1.0)
    with pytest.raises(TypeError):
        _new_metrics(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)  # one too many
    assert _new_beat(t_s=1.0, rr_ms=800.0) == Beat(1.0, 800.0)
