/* relax: a tiny external "solver" for the diffbypass external-program example.
 *
 * Usage: relax ITERATIONS < input > output
 * Input: a line "n d", then n lines of d numbers. Output: n lines of d numbers.
 * For every row x it solves the coupled fixed point s_i = tanh(x_i) + 0.3 sin(s_{i+1}) (indices
 * modulo d) by ITERATIONS damped updates and prints s quantised to steps of 1/16: a
 * piecewise-constant output, so the program has no useful gradient. Cost: ITERATIONS * d per row.
 * relax.py is the same program in Python (used where no C compiler is found).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 1000;
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
                s[i] = 0.5 * s[i] + 0.5 * (x[i] + 0.3 * sin(s[(i + 1) % d]));
        for (int i = 0; i < d; i++)
            printf(i + 1 < d ? "%.4f " : "%.4f\n", floor(16.0 * s[i] + 0.5) / 16.0);
    }
    free(x);
    free(s);
    return 0;
}
