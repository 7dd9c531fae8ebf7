"""relax: the external program of the example, in Python (the C version is relax.c).

Usage: ``python relax.py ITERATIONS [COUPLING [DIFFUSION [LEVELS]]] < input > output``. Input: a
line ``n d``, then ``n`` lines of ``d`` numbers; output: ``n`` lines of ``d`` numbers. Each row
``x`` is solved for the fixed point ``s_i = tanh(x_i) + c sin(s_{i+1}) + D (s_{i-1} - 2 s_i +
s_{i+1})`` (indices modulo ``d``) by ``ITERATIONS`` damped updates, and ``s`` is printed
quantised to steps of ``1/LEVELS``; ``c`` (default 0.3), ``D`` (default 0) and ``LEVELS``
(default 16) as in ``relax.c``.
"""

import math
import sys


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    coupling = float(sys.argv[2]) if len(sys.argv) > 2 else 0.3
    diffusion = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    levels = float(sys.argv[4]) if len(sys.argv) > 4 else 16.0
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
                s[i] = 0.5 * s[i] + 0.5 * (x[i] + coupling * math.sin(s[(i + 1) % d])
                                           + diffusion * (s[(i - 1) % d] - 2.0 * s[i] + s[(i + 1) % d]))
        out.append(" ".join(f"{math.floor(levels * v + 0.5) / levels:.4f}" for v in s))
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))


if __name__ == "__main__":
    main()
