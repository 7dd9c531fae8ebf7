"""Issue #22 (core): what fn's exit, a misleading error text or a masked array must not do.

A wrapped script's ``sys.exit`` becomes a :class:`~diffbypass.BlackBoxError` (retried like any
error), a KeyboardInterrupt still propagates, pickling failures are recognised by where they are
raised (not by the word "pickle" in a message), and a masked array is refused. Each test fails on
the code before the fix; ``docs/reliability.md`` lists them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from diffbypass import BlackBoxError, Bypass, StraightThrough

from . import _fns


@pytest.mark.parametrize("pool", [False, True], ids=["in-thread", "thread-pool"])
def test_fn_raising_system_exit_is_a_blackbox_error_naming_fn_and_code(pool):
    """A wrapped script's sys.exit(3) ended the whole process silently."""
    with ThreadPoolExecutor(1) as executor:
        layer = Bypass(_fns.exits, StraightThrough(), executor=executor if pool else None)
        with pytest.raises(
            BlackBoxError,
            match=r"^fn exits raised SystemExit with exit code 3 \(a script's sys.exit or an "
            r"argparse error\); call the script's work, not its command line in forward$",
        ):
            layer(torch.zeros(2, 3))


@pytest.mark.parametrize("pool", [False, True], ids=["in-thread", "thread-pool"])
def test_a_transient_system_exit_is_retried(pool, tmp_path):
    with ThreadPoolExecutor(1) as executor:
        layer = Bypass(_fns.ExitOnce(str(tmp_path / "exited")), StraightThrough(),
                       executor=executor if pool else None, retries=1)  # fmt: skip
        y = layer(torch.ones(2, 3))
    assert torch.equal(y, _fns.wiggle(torch.ones(2, 3))) and layer.blackbox.retried == 1


def test_keyboard_interrupt_in_fn_still_propagates():
    def interrupted(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Bypass(interrupted, StraightThrough(), retries=2)(torch.zeros(2, 3))


def test_a_transient_error_mentioning_pickle_is_retried_not_called_a_pickling_failure():
    calls = []

    def flaky(x):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the server could not unpickle the request")
        return x * 2

    with ThreadPoolExecutor(1) as pool:
        layer = Bypass(flaky, StraightThrough(), executor=pool, retries=1)
        assert torch.equal(layer(torch.ones(2, 3)), torch.full((2, 3), 2.0))
    assert layer.blackbox.retried == 1
    with ThreadPoolExecutor(1) as pool:
        calls.clear()
        layer = Bypass(flaky, StraightThrough(), executor=pool)
        with pytest.raises(BlackBoxError, match=r"^fn raised in forward$") as info:
            layer(torch.ones(2, 3))
    assert "unpickle the request" in str(info.value.__cause__)


def test_a_masked_array_is_refused_not_its_mask_ignored():
    def masked(x):
        a = x.numpy().copy()
        return np.ma.masked_array(a, mask=a > 0)  # the data under the mask is still there

    layer = Bypass(masked, StraightThrough())
    with pytest.raises(
        BlackBoxError,
        match=r"^fn returned a NumPy masked array \(2 masked value\(s\)\) in forward; its mask "
        r"would be ignored\. Return out\.filled\(np\.nan\)",
    ):
        layer(torch.tensor([[1.0, -1.0], [2.0, -2.0]]))
