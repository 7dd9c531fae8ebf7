"""``python -m benchmarks``: list the studies of the registry, or run them one after the other.

``list`` prints the registry; ``run-all`` runs every study that ``make bench`` runs (the full
run; ``--quick`` runs every study's quick mode instead); ``run NAME ...`` runs the named ones.
A study whose full run is several commands (``lv_pareto``) is run by hand, see its README.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

from benchmarks import _harness as h
from benchmarks.registry import BY_NAME, STUDIES, Study


def run(study: Study, quick: bool) -> int:
    """Run one study from the repository root; its exit status."""
    options = study.quick if quick else study.full
    if ";" in options:
        print(f"{study.name}: its full run is several commands ({options}); see its README",
              file=sys.stderr)
        return 0
    cmd = [sys.executable, "-m", f"benchmarks.{study.name}", *shlex.split(options)]
    print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=h.REPO).returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the registry")
    every = sub.add_parser("run-all", help="run the studies that make bench runs")
    every.add_argument("--quick", action="store_true", help="every study's quick mode instead")
    some = sub.add_parser("run", help="run the named studies")
    some.add_argument("names", nargs="+", choices=sorted(BY_NAME), metavar="NAME")
    some.add_argument("--quick", action="store_true", help="their quick modes")
    args = p.parse_args(argv)
    if args.command == "list":
        for s in STUDIES:
            print(f"{s.name:18} {'bench' if s.in_bench else '     '}  {s.duration:42} "
                  f"{s.description}")
        return 0
    chosen = ([BY_NAME[n] for n in args.names] if args.command == "run"
              else [s for s in STUDIES if s.in_bench or args.quick])
    failed = [s.name for s in chosen if run(s, args.quick)]
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
