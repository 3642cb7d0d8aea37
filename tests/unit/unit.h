/* The unit tests' harness, shared by the files of tests/unit/: each check counts as
 * passed or failed, a failed one prints where it is; main (unit.c) prints the tally.
 * Each area file has one entry point, called by main. */
#ifndef HB_TEST_UNIT_H
#define HB_TEST_UNIT_H

extern int n_pass, n_fail;

int check_(int ok, const char *file, int line, const char *expr);
/* A failing check inside a loop also says which input failed. */
int checkf_(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define CHECK(cond) check_(!!(cond), __FILE__, __LINE__, #cond)
#define CHECKF(cond, ...) checkf_(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

/* MPI started once (a singleton when not under mpirun), hb_rank and hb_size set. */
void unit_mpi_start(void);

/* |a - b| within tol (absolute) or within rel of |b| (relative). */
#define NEAR(a, b, tol) (fabs((double)(a) - (double)(b)) <= (tol))
#define NEAR_REL(a, b, rel) (fabs((double)(a) - (double)(b)) <= (rel) * fabs((double)(b)))

void unit_risk(void);          /* tests/unit/risk.c: kernels/risk/calc.h */
void unit_rng(void);           /* tests/unit/rng.c: kernels/risk/rng.h */
void unit_tok(void);           /* tests/unit/tok.c: kernels/index/tok.h */
void unit_ckpt(const char *dir); /* tests/unit/ckpt.c: src/ckpt.h, in a fresh folder dir */
void unit_agg(void);           /* tests/unit/agg.c: kernels/aggregate/acc.c (exact sums) */
void unit_startup(const char *dir); /* tests/unit/startup.c: src/mpienv.c, src/core/commit.c */

#endif
