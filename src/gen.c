/* `h5batch gen KIND`: the registry of data generators. */
#include "gen.h"

#include "core/hb.h"



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
