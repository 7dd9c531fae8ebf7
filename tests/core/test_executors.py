"""For a fixed seed, results do not depend on how fn is evaluated.

Noise is drawn before dispatch, so the default vectorised call, ``max_batch`` chunking, a thread
pool, a (spawned) process pool and a Dask cluster must give *identical* ES gradients and
surrogate fit statistics. The black box (``_fns.wiggle``) is module-level so that it pickles, and
uses only correctly rounded elementwise arithmetic, so its values do not depend on chunk sizes.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
import torch
from torch import nn

from diffbypass import ES, Bypass, Surrogate

from . import _fns
from .registry import gen

X = torch.randn(4, 3, generator=gen(0), dtype=torch.float64)
V = torch.randn(4, 3, generator=gen(1), dtype=torch.float64)


def es_gradients(**bypass_kw):
    """Two backward passes (the second one continues the noise stream)."""
    layer = Bypass(_fns.wiggle, ES(sigma=0.3, samples=10, generator=gen(2)), **bypass_kw)
    grads = []
    for t in range(2):
        x = (X + t).requires_grad_(True)
        layer(x).backward(V)
        grads.append(x.grad)
    return grads


def surrogate_stats(**bypass_kw):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    layer = Bypass(
        _fns.wiggle,
        Surrogate(model, sigma=0.3, samples=6, fit_steps=3, lr=1e-2, generator=gen(4)),
        **bypass_kw,
    )
    stats = []
    for t in range(2):
        x = (X + t).requires_grad_(True)
        layer(x).backward(V)
        stats.append((layer.stats, x.grad))
    return stats


def same(a, b):
    return all(sa == sb and torch.equal(ga, gb) for (sa, ga), (sb, gb) in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def reference():
    return es_gradients(), surrogate_stats()


@pytest.fixture(scope="module")
def process_pool():
    # 'spawn': forking a process that has started torch's thread pools can hang
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@pytest.fixture(scope="module")
def dask_executor():
    distributed = pytest.importorskip("distributed")
    # processes=False runs the worker in this process (fast start); with host=127.0.0.1 it must
    # speak TCP (the in-process transport takes no host)
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        host="127.0.0.1",
        protocol="tcp",
        dashboard_address=None,
    ) as cluster:
        with distributed.Client(cluster) as client:
            yield client.get_executor()


@pytest.mark.parametrize("max_batch", [1, 7, 40, 1000])
def test_max_batch_chunking(reference, max_batch):
    assert all(map(torch.equal, es_gradients(max_batch=max_batch), reference[0]))
    assert same(surrogate_stats(max_batch=max_batch), reference[1])


@pytest.mark.parametrize("max_batch", [None, 5])
def test_thread_pool(reference, max_batch):
    with ThreadPoolExecutor(2) as pool:
        assert all(map(torch.equal, es_gradients(executor=pool, max_batch=max_batch), reference[0]))
        assert same(surrogate_stats(executor=pool, max_batch=max_batch), reference[1])


@pytest.mark.parametrize("max_batch", [None, 9])
def test_process_pool(reference, process_pool, max_batch):
    assert all(
        map(torch.equal, es_gradients(executor=process_pool, max_batch=max_batch), reference[0])
    )
    assert same(surrogate_stats(executor=process_pool, max_batch=max_batch), reference[1])


def test_dask_cluster(reference, dask_executor):
    assert all(map(torch.equal, es_gradients(executor=dask_executor), reference[0]))
    assert same(surrogate_stats(executor=dask_executor, max_batch=5), reference[1])


@pytest.mark.parametrize("max_batch", [1, 3, 8, 40, 41])
def test_max_batch_bounds_every_call(max_batch):
    sizes = []
    layer = Bypass(
        _fns.record_sizes(sizes), ES(sigma=0.3, samples=10, generator=gen(0)), max_batch=max_batch
    )
    x = X.clone().requires_grad_(True)
    layer(x).backward(V)
    n_forward = -(-4 // max_batch)  # the forward batch is chunked too (ceil)
    forward, samples = sizes[:n_forward], sizes[n_forward:]
    assert max(forward) <= max_batch and sum(forward) == 4
    assert max(samples) <= max_batch and sum(samples) == 10 * 4
    assert len(samples) == -(-40 // max_batch)  # ceil: all chunks full but the last


def test_executor_without_max_batch_sends_one_task_per_perturbation():
    sizes = []
    with ThreadPoolExecutor(2) as pool:
        layer = Bypass(
            _fns.record_sizes(sizes), ES(sigma=0.3, samples=6, generator=gen(0)), executor=pool
        )
        x = X.clone().requires_grad_(True)
        layer(x).backward(V)
    assert sizes == [4] * 7


@pytest.mark.parametrize("threads", [False, True])
def test_replacing_fn_takes_effect_at_the_next_call(threads):
    """``blackbox.fn = wrapper`` (e.g. a timer) is what every later call evaluates."""
    sizes = []
    pool = ThreadPoolExecutor(2) if threads else None
    layer = Bypass(_fns.wiggle, ES(sigma=0.3, samples=4, generator=gen(0)), executor=pool)
    reference = layer(X)
    layer.blackbox.fn = _fns.record_sizes(sizes)
    assert layer.fn is layer.blackbox.fn
    x = X.clone().requires_grad_(True)
    layer(x).backward(V)
    assert sizes == ([4] * 5 if threads else [4, 16])
    layer.blackbox.fn = _fns.wiggle
    assert torch.equal(layer(X), reference)
    if pool is not None:
        pool.shutdown()


def test_replacing_fn_is_checked():
    layer = Bypass(_fns.wiggle, ES(sigma=0.3, samples=4))
    with pytest.raises(TypeError, match="fn must be callable; got int"):
        layer.blackbox.fn = 3
    assert layer.fn is _fns.wiggle
