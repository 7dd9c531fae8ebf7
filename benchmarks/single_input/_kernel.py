"""The star DP alone, on several trees: the plain (``lam = 0``) kernel and ``dp_solve``, first-call
compile times, and the contours of every tree compared bit for bit.

Run from the repository root (the parent exports each commit with ``git archive`` and runs one
fresh interpreter per tree and round, alternating the order)::

    python benchmarks/single_input/_kernel.py OLD=ef521ef^ CUR=17724ac FIX=HEAD [--rounds 8]

Each child runs on one thread and times, in CPU time (median of 5 repeats that each loop for at
least 0.05 s):

* ``kernel B=1 x10``: ``_dp_kernel.solve_batch`` on 10 random float64 25 x 65 maps, one contour
  per call (summed over the 10 calls); ``kernel B=10``, ``B=80``: one call on a batch;
* ``dp_solve B=10 f32``: the public function on 10 float32 maps (the star case's call, its
  checks and conversions included).

The kernel is called as each tree calls it: ``(cost, delta, out)`` before the penalty,
``(cost, delta, zeros(B), out)`` with the runtime ``lam`` test, ``(cost, delta, None, out)``
with the lam-free specialisation. Compile times: the first ``dp_solve`` call (``lam = 0``, then
``lam = 0.5`` where the tree has it) of a process with an empty ``NUMBA_CACHE_DIR`` (compiling)
and of a second process on that cache (loading), 3 times per tree, the trees alternating.
Results: ``results/single_input_kernel.json``.
"""

from __future__ import annotations

import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
       "OMP_WAIT_POLICY": "PASSIVE"}  # fmt: skip
HERE = Path(__file__).resolve().parent


def _per_call(fn, repeats: int = 5, min_time: float = 0.05) -> float:
    """Median over repeats of the CPU seconds per call."""
    times = []
    for _ in range(repeats):
        calls, w0, c0 = 0, time.perf_counter(), time.process_time()
        while calls == 0 or time.perf_counter() - w0 < min_time:
            fn()
            calls += 1
        times.append((time.process_time() - c0) / calls)
    return statistics.median(times)


def child(mode: str) -> None:
    import numpy as np

    t0 = time.perf_counter()
    from diffbypass_stardp import _dp_kernel, dp_solve

    rng = np.random.default_rng(0)
    maps32 = rng.random((10, 25, 65)).astype(np.float32)
    t1 = time.perf_counter()
    first = dp_solve(maps32, 1)  # the first call: compiles or loads the cache
    t2 = time.perf_counter()
    out: dict = {"import_s": t1 - t0, "first_call_s": t2 - t1, "contours": first.tolist()}
    if mode == "compile":
        if "lam" in inspect.signature(dp_solve).parameters:  # then the first penalised call
            dp_solve(maps32, 1, lam=0.5)
            out["first_penalised_call_s"] = time.perf_counter() - t2
        print(json.dumps(out))
        return
    penalised = "lam" in inspect.signature(_dp_kernel.solve_batch.py_func).parameters
    specialised = penalised and "lam is None" in inspect.getsource(_dp_kernel)

    def kernel(cost, res):
        if not penalised:
            return lambda: _dp_kernel.solve_batch(cost, 1, res)
        lam = None if specialised else np.zeros(len(cost))
        return lambda: _dp_kernel.solve_batch(cost, 1, lam, res)

    maps = rng.random((80, 25, 65))
    res = np.empty((80, 25), dtype=np.int64)
    singles = [kernel(maps[b:b + 1], res[b:b + 1]) for b in range(10)]
    times = {
        "kernel B=1 x10": _per_call(lambda: [f() for f in singles]),
        "kernel B=10": _per_call(kernel(maps[:10], res[:10])),
        "kernel B=80": _per_call(kernel(maps, res)),
        "dp_solve B=10 f32": _per_call(lambda: dp_solve(maps32, 1)),
    }
    ref = dp_solve(maps, 1).tolist()
    print(json.dumps({**out, "times": times, "contours64": ref}))


def _run(tree: Path, mode: str, cache: str) -> dict:
    env = {**os.environ, **ENV, "PYTHONPATH": f"{tree}:{tree}/plugins/stardp",
           "NUMBA_CACHE_DIR": cache}  # fmt: skip
    got = subprocess.run([sys.executable, __file__, "--child", mode], env=env, check=True,
                         capture_output=True, text=True, cwd=tempfile.gettempdir())  # fmt: skip
    return json.loads(got.stdout.strip().splitlines()[-1])


def with_table(result: dict) -> dict:
    """``result`` with the benchmarks' convention (``docs/ext/benchjson.py``): the method text
    (this docstring) and a table of the median times and of each tree's ratio to the first."""
    names = list(result["median_us"])
    cases = list(result["median_us"][names[0]])
    columns = ["case"] + [f"{n} ({result['trees'][n]}) us" for n in names]
    columns += [f"{n} / {names[0]}" for n in names[1:]]
    rows = [[c] + [round(result["median_us"][n][c], 1) for n in names]
            + [round(result["ratio_to_first"][n][c], 3) for n in names[1:]] for c in cases]
    return {"method": " ".join(__doc__.split()), **result,
            "table": {"columns": columns, "rows": rows}}


def main() -> None:
    args = [a for a in sys.argv[1:] if "=" in a]
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 8
    work = Path(tempfile.mkdtemp(prefix="dpkernel_"))
    trees = {}
    for arg in args:
        name, rev = arg.split("=", 1)
        trees[name] = work / name
        trees[name].mkdir()
        archive = subprocess.run(["git", "archive", rev, "diffbypass", "plugins/stardp"],
                                 check=True, capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(trees[name])], input=archive, check=True)
    result: dict = {"trees": dict(a.split("=", 1) for a in args), "compile": {}, "rounds": []}
    order = list(trees)
    for rep in range(3):  # compile cold, then load from the cache; trees alternate
        for name in (order if rep % 2 else order[::-1]):
            cache = str(work / f"cache_{name}_{rep}")
            cold, warm = _run(trees[name], "compile", cache), _run(trees[name], "compile", cache)
            result["compile"].setdefault(name, []).append(
                {"compile_s": cold["first_call_s"], "cache_load_s": warm["first_call_s"],
                 "import_s": cold["import_s"],
                 "penalised_compile_s": cold.get("first_penalised_call_s"),
                 "penalised_cache_load_s": warm.get("first_penalised_call_s")})
    result["compile_median_s"] = {
        n: {k: statistics.median(x[k] for x in v) for k in v[0] if v[0][k] is not None}
        for n, v in result["compile"].items()}  # fmt: skip
    for r in range(rounds + 1):  # round 0 is untimed (warms the caches and the machine)
        row = {}
        for name in (order if r % 2 else order[::-1]):
            row[name] = _run(trees[name], "time", str(work / f"cache_{name}_0"))
        same = all(row[n]["contours"] == row[order[0]]["contours"]
                   and row[n]["contours64"] == row[order[0]]["contours64"] for n in order)
        if r:
            result["rounds"].append({n: row[n]["times"] for n in order} | {"identical": same})
        print(f"round {r}: identical={same} " + " ".join(
            f"{n}:{row[n]['times']['kernel B=1 x10'] * 1e6:.0f}us" for n in order), flush=True)
    cases = list(result["rounds"][0][order[0]])
    result["median_us"] = {n: {c: 1e6 * statistics.median(x[n][c] for x in result["rounds"])
                               for c in cases} for n in order}  # fmt: skip
    result["ratio_to_first"] = {n: {c: statistics.median(x[n][c] / x[order[0]][c]
                                                         for x in result["rounds"])
                                    for c in cases} for n in order[1:]}  # fmt: skip
    result["load_average"] = os.getloadavg()
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "single_input_kernel.json").write_text(json.dumps(with_table(result),
                                                                          indent=1))
    print(json.dumps({k: result[k] for k in ("compile_median_s", "median_us", "ratio_to_first")},
                     indent=1))


if __name__ == "__main__":
    if "--child" in sys.argv:
        child(sys.argv[sys.argv.index("--child") + 1])
    else:
        main()
