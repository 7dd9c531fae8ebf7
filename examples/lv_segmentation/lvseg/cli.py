"""Command line ``lvseg`` (placeholder: the train/evaluate/predict commands come later)."""

from __future__ import annotations

import argparse
from typing import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lvseg`` command; prints the help and returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="lvseg",
        description="EDPCNN left-ventricle segmentation (commands train, evaluate and predict "
        "are not implemented yet).",
    )
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
