"""relax: the external program of the example, in Python (the C version is relax.c).

Usage: ``python relax.py ITERATIONS < input > output``. Input: a line ``n d``, then ``n`` lines
of ``d`` numbers; output: ``n`` lines of ``d`` numbers. Each row ``x`` is solved for the fixed
point ``s_i = tanh(x_i) + 0.3 sin(s_{i+1})`` (indices modulo ``d``) by ``ITERATIONS`` damped
updates, and ``s`` is printed quantised to steps of 1/16.
"""

import math
import sys


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    lines = sys.stdin.read().split("\n")
    n, d = map(int, lines[0].split())
    out = []
    for r in range(n):
        x = [math.tanh(float(v)) for v in lines[1 + r].split()]
        if len(x) != d:
            sys.exit(f"relax: row {r} has {len(x)} numbers; expected {d}")
        s = [0.0] * d
        for _ in range(iterations):
            for i in range(d):
                s[i] = 0.5 * s[i] + 0.5 * (x[i] + 0.3 * math.sin(s[(i + 1) % d]))
        out.append(" ".join(f"{math.floor(16.0 * v + 0.5) / 16.0:.4f}" for v in s))
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))


if __name__ == "__main__":
    main()
