/* h5batch plugin API: exit codes, error recording, collective agreement and the
 * checking macros.
 *
 * Every public function returns an int status: 0 on success, otherwise one of the exit
 * codes of the contract (sysexits.h). The macros below record where an error happened
 * and return it to the caller; only main() turns an error into an exit. */
#ifndef H5BATCH_ERRORS_H
#define H5BATCH_ERRORS_H

enum {
    HB_OK = 0,
    HB_EUSAGE = 64,    /* command line usage */
    HB_EDATA = 65,     /* bad input data or schema */
    HB_ENOINPUT = 66,  /* input missing or unreadable */
    HB_EINTERNAL = 70, /* internal error (a bug or out of memory) */
    HB_ECANTCREAT = 73,/* cannot create output */
    HB_EIO = 74,       /* I/O error */
    HB_ETEMPFAIL = 75, /* interrupted after a checkpoint */
    HB_ECONFIG = 78    /* bad job file */
};

/* Records an error and returns its code; the first error recorded is the cause, so a
 * later one is ignored (and the first one's code returned) until hb_err_clear. Not
 * collective. */
int hb_err_set(int code, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records an error that names the source location of the failing call. */
int hb_err_at(int code, const char *file, int line, const char *what);
int hb_err_code(void);
const char *hb_err_msg(void);
void hb_err_clear(void);

/* Collective: every rank passes its local status; all ranks return the status of the
 * lowest failing rank, and that rank's message becomes every rank's message, so that the
 * ranks take the same branch and rank 0 can print the error once. */
int hb_agree(int rc);

#define HB_CALL(expr)                                                                  \
    do {                                                                               \
        int hb_rc_ = (expr);                                                           \
        if (hb_rc_ != 0) return hb_rc_;                                                \
    } while (0)

/* Jumps to label on failure with rc set; for functions that must clean up. */
#define HB_TRY(rc, expr, label)                                                        \
    do {                                                                               \
        if (((rc) = (expr)) != 0) goto label;                                          \
    } while (0)

#define HB_CHECK(cond, code, where, ...)                                               \
    do {                                                                               \
        if (!(cond)) return hb_err_set((code), (where), __VA_ARGS__);                  \
    } while (0)

#define HB_CALL_MPI(expr)                                                              \
    do {                                                                               \
        if ((expr) != MPI_SUCCESS) return hb_err_at(HB_EINTERNAL, __FILE__, __LINE__, #expr); \
    } while (0)

#endif
