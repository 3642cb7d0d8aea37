/* `h5batch gen KIND`: the registry of data generators. */
#include "gen.h"

#include "hb.h"
#include "opts.h"
#include "run.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

static const struct {
    const char *kind;
    int (*main)(int argc, char **argv);
} generators[] = {
    {"traffic", hb_gen_traffic},
    {"market", hb_gen_market},
    {"corpus", hb_gen_corpus},
};

int hb_gen_main(int argc, char **argv)
{
    if (argc < 1) return hb_err_set(HB_EUSAGE, "gen", "usage: h5batch gen KIND -o FILE [options] (h5batch --help)");
    char kinds[256] = "";
    for (size_t i = 0; i < sizeof generators / sizeof generators[0]; i++) {
        if (strcmp(argv[0], generators[i].kind) == 0) return generators[i].main(argc - 1, argv + 1);
        strcat(kinds, i ? ", " : "");
        strcat(kinds, generators[i].kind);
    }
    return hb_err_set(HB_EUSAGE, "gen", "unknown kind '%s' (this version has: %s)", argv[0], kinds);
}

int hb_gen_int(const char *gen, const char *opt, const char *v, double lo, double hi, int64_t *out)
{
    double d;
    if (!v || hb_parse_size(v, &d) != 0 || d != floor(d) || d < lo || d > hi)
        return hb_err_set(HB_EUSAGE, gen, "%s needs an integer in [%g, %g], got '%s'", opt, lo, hi,
                          v ? v : "nothing");
    *out = (int64_t)d;
    return 0;
}

int hb_gen_output(const char *path, int force)
{
    struct stat sb;
    int rc = 0;
    if (hb_rank == 0 && !force && stat(path, &sb) == 0)
        rc = hb_err_set(HB_ECANTCREAT, path, "file exists; use --force to replace it");
    if (hb_rank == 0 && rc == 0) rc = hb_check_writable(path);
    return hb_agree(rc);
}
