"""Train a small network through an external program, locally or on a Dask cluster.

The black box is ``relax`` (``relax.c``, a fixed-point solver with a quantised output: no useful
gradient), run once per chunk of inputs through ``subprocess``. A network maps a condition
``z`` to the solver's input ``x``; the loss compares ``relax(x)`` with the output that a hidden
input ``x* = A z`` produces. ``diffbypass.Bypass`` returns ``relax``'s exact output forward and
a surrogate (or ES) gradient backward; its evaluations run where ``--executor`` says::

    python examples/external_program/train.py                      # serial, in this process
    python examples/external_program/train.py --executor threads   # a thread pool
    python examples/external_program/train.py --executor dask      # a Dask LocalCluster
    python examples/external_program/train.py --executor dask --scheduler tcp://host:8786

Only the executor changes; for a fixed seed the numbers do not depend on it.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack

import torch
from torch import nn

from diffbypass import ES, Bypass, Surrogate
from program import ExternalProgram, build


def make_executor(kind: str, workers: int, scheduler: str | None, stack: ExitStack) -> Executor | None:
    """``none``: evaluate in this process; ``threads``; ``dask``: a cluster's executor."""
    if kind == "none":
        return None
    if kind == "threads":
        return stack.enter_context(ThreadPoolExecutor(workers))
    import distributed  # pip install "diffbypass[distributed]"

    if scheduler is None:  # a cluster on this machine; --scheduler connects to a real one
        scheduler = stack.enter_context(distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"))  # fmt: skip
    client = stack.enter_context(distributed.Client(scheduler))
    return client.get_executor()


def count(text: str) -> int:
    """An argparse type: an integer >= 1; the message names what was received."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {value}")
    return value


def main(argv: list[str] | None = None) -> list[float]:
    """Run the training; returns the loss of every step."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--executor", choices=("none", "threads", "dask"), default="none",
                   help="where relax runs: this process, a thread pool or a Dask cluster")  # fmt: skip
    p.add_argument("--workers", type=count, default=2, help="threads or Dask worker processes")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    p.add_argument("--estimator", choices=("surrogate", "es"), default="surrogate")
    p.add_argument("--steps", type=count, default=150, help="training steps")
    p.add_argument("--batch", type=count, default=16, help="conditions per step")
    p.add_argument("--samples", type=count, default=16, help="perturbed evaluations per input")
    p.add_argument("--max-batch", type=count, default=32, help="inputs per program run (a task)")
    p.add_argument("--iterations", type=count, default=2000, help="solver iterations per input")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    d_in, d = 4, 8
    program = ExternalProgram(build(), iterations=args.iterations)
    hidden = torch.randn(d_in, d)  # the unknown map the network has to find

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, d_in)
        return z, torch.as_tensor(program(z @ hidden))

    net = nn.Sequential(nn.Linear(d_in, 64), nn.Tanh(), nn.Linear(64, d))
    gen = torch.Generator().manual_seed(args.seed)
    if args.estimator == "es":
        estimator: ES | Surrogate = ES(sigma=0.3, samples=args.samples, generator=gen)
    else:
        model = nn.Sequential(nn.Linear(d, 64), nn.Tanh(), nn.Linear(64, d))
        estimator = Surrogate(model, sigma=0.3, samples=args.samples, fit_steps=2, lr=3e-3,
                              generator=gen)  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    z_test, y_test = sample(64)
    losses = []
    with ExitStack() as stack:
        executor = make_executor(args.executor, args.workers, args.scheduler, stack)
        # On an executor, a hung program becomes a BlackBoxError after 60 s and a failed chunk
        # (a crashed program, a lost Dask worker) is run again up to twice, same results.
        limits = {} if executor is None else {"timeout": 60.0, "retries": 2}
        solver = Bypass(program, estimator, executor=executor, max_batch=args.max_batch, **limits)
        start = time.perf_counter()
        for step in range(args.steps):
            z, y = sample(args.batch)
            loss = ((solver(net(z)) - y) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if step % max(1, args.steps // 10) == 0 or step == args.steps - 1:
                print(f"step {step:4d}  loss {loss.item():.4f}  ({time.perf_counter() - start:.1f} s)")
        with torch.no_grad():
            test = ((solver.eval()(net(z_test)) - y_test) ** 2).mean().item()
    print(f"test loss {test:.4f} (outputs are in steps of 1/16; predicting 0 gives "
          f"{(y_test**2).mean().item():.4f}); executor: {args.executor}")
    return losses


if __name__ == "__main__":
    main()
