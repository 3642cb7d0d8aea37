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
 * later one is ignored (and the first one's code returned) until hb_err_clear. The
 * source location is kept for the trail that -v shows. Not collective. */
#define hb_err_set(code, where, ...) hb_err_set_at(__FILE__, __LINE__, (code), (where), __VA_ARGS__)
int hb_err_set_at(const char *file, int line, int code, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Records an error that names the source location of the failing call. */
int hb_err_at(int code, const char *file, int line, const char *what);
/* Adds file:line to the trail of the recorded error as it is returned up; returns rc. */
int hb_err_trace(int rc, const char *file, int line);
int hb_err_code(void);
const char *hb_err_msg(void);
/* The places the recorded error passed through, innermost first ("" when none). */
const char *hb_err_trail(void);
void hb_err_clear(void);
/* Rank 0 prints the recorded error as one line, `h5batch: error: WHERE: WHAT`; under -v a
 * second line gives its trail. Nothing when no error is recorded. */
void hb_err_report(void);

/* Collective: every rank passes its local status; all ranks return the status of the
 * lowest failing rank, and that rank's message (naming it, when it is not rank 0) and
 * trail become every rank's, so that the ranks take the same branch and rank 0 can print
 * the error once. */
int hb_agree(int rc);

/* The checking macros: each records where it failed (hb_err_set, or the trail) and
 * returns the status to the caller; only main() turns a status into an exit. HB_CALL
 * passes on a status; HB_CHECK turns a false condition into an error. The I/O layer's
 * HDF5 calls go through HB_CALL_H5 (io/internal.h, not installed), where a negative hid_t or herr_t is a
 * failure.
 *
 * MPI errors abort; they are not checked. main() sets MPI_ERRORS_ARE_FATAL on
 * MPI_COMM_WORLD (MPI's default, made explicit), so a communication call either succeeds
 * or ends the job, and mpirun or srun takes every rank down: no rank is left waiting. A
 * communication failure cannot be agreed on, since agreeing needs the communication that
 * failed; what one rank can see and report (HDF5 and MPI-IO on files, whose handler is
 * MPI_ERRORS_RETURN, allocation, bad data) is returned and agreed with hb_agree. */
#define HB_CALL(expr)                                                                  \
    do {                                                                               \
        int hb_rc_ = (expr);                                                           \
        if (hb_rc_ != 0) return hb_err_trace(hb_rc_, __FILE__, __LINE__);              \
    } while (0)

#define HB_CHECK(cond, code, where, ...)                                               \
    do {                                                                               \
        if (!(cond)) return hb_err_set((code), (where), __VA_ARGS__);                  \
    } while (0)


#endif
