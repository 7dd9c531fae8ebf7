/* relax: a tiny external "solver" for the diffbypass external-program example.
 *
 * Usage: relax ITERATIONS [COUPLING [DIFFUSION [LEVELS]]] < input > output
 * Input: a line "n d", then n lines of d numbers. Output: n lines of d numbers.
 * For every row x it solves the coupled fixed point
 *     s_i = tanh(x_i) + c sin(s_{i+1}) + D (s_{i-1} - 2 s_i + s_{i+1})   (indices modulo d)
 * by ITERATIONS damped updates s <- s/2 + (right-hand side)/2 and prints s quantised to steps
 * of 1/LEVELS: a piecewise-constant output, so the program has no useful gradient. The physical
 * parameters are the coupling c (default 0.3) and the diffusion coefficient D (default 0);
 * LEVELS defaults to 16. Cost: ITERATIONS * d per row.
 * relax.py is the same program in Python (used where no C compiler is found).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 1000;
    double coupling = argc > 2 ? atof(argv[2]) : 0.3;
    double diffusion = argc > 3 ? atof(argv[3]) : 0.0;
    double levels = argc > 4 ? atof(argv[4]) : 16.0;
    int n, d;
    if (scanf("%d %d", &n, &d) != 2 || n < 0 || d < 1) {
        fprintf(stderr, "relax: expected a first line 'n d'\n");
        return 2;
    }
    double *x = malloc(sizeof(double) * d), *s = malloc(sizeof(double) * d);
    for (int r = 0; r < n; r++) {
        for (int i = 0; i < d; i++) {
            if (scanf("%lf", &x[i]) != 1) {
                fprintf(stderr, "relax: row %d has fewer than %d numbers\n", r, d);
                return 2;
            }
            x[i] = tanh(x[i]);
            s[i] = 0.0;
        }
        for (long k = 0; k < iterations; k++)
            for (int i = 0; i < d; i++)
                s[i] = 0.5 * s[i] + 0.5 * (x[i] + coupling * sin(s[(i + 1) % d])
                                           + diffusion * (s[(i + d - 1) % d] - 2.0 * s[i] + s[(i + 1) % d]));
        for (int i = 0; i < d; i++)
            printf(i + 1 < d ? "%.4f " : "%.4f\n", floor(levels * s[i] + 0.5) / levels);
    }
    free(x);
    free(s);
    return 0;
}
