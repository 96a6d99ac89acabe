"""Hostile saved state for the mil head's hidden layer (``MILHead(hidden=H)``, issue 24): a layer
of another width, a ``hidden`` that does not match the arrays, a missing array: refused in one line
naming the folder's field."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import refused_load, resign, saved_mil, write_head


@pytest.fixture
def saved(tmp_path):
    return saved_mil(tmp_path / "m", hidden=4)


def test_a_saved_hidden_layer_of_another_width_is_refused(saved):
    write_head(saved, lambda a: a.update(W1=a["W1"][:3].copy()))
    refused_load(saved, r"field 'W1' must be \(4, 5\) for a hidden layer of 4 over instances of 5, not \(3, 5\)")


def test_a_saved_hidden_size_that_the_arrays_do_not_have_is_refused(saved):
    resign(saved, lambda c: c["head"]["info"].update(hidden=7))
    refused_load(saved, r"field 'W1' must be \(7, 5\) for a hidden layer of 7 over instances of 5, not \(4, 5\)")


def test_a_saved_second_layer_of_another_width_is_refused(saved):
    write_head(saved, lambda a: a.update(W2=np.zeros((2, 3))))
    refused_load(saved, r"field 'W2' must be \(2, 4\) for a hidden layer of 4 over instances of 5, not \(2, 3\)")


@pytest.mark.parametrize("bad", [-2, "4", 2.5, True])
def test_a_saved_hidden_that_is_not_a_positive_whole_number_is_refused(saved, bad):
    resign(saved, lambda c: c["head"]["info"].update(hidden=bad))
    refused_load(saved, rf"field 'hidden' must be a positive whole number, not {bad!r}")


def test_a_saved_hidden_of_zero_asks_for_the_linear_scorers_weight(saved):
    resign(saved, lambda c: c["head"]["info"].update(hidden=0))
    refused_load(saved, r"the 'mil' head's state lacks arrays \['W'\]")


def test_a_saved_state_without_its_hidden_layer_is_refused(saved):
    write_head(saved, lambda a: a.pop("c1"))
    refused_load(saved, r"c1")
