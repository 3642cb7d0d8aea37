/* Options shared by the generators. */
#include "kernels/common/gen.h"

#include "core/hb.h"
#include "core/opts.h"

#include <math.h>

int hb_gen_int(const char *gen, const char *opt, const char *v, double lo, double hi, int64_t *out)
{
    double d;
    if (!v || hb_parse_size(v, &d) != 0 || d != floor(d) || d < lo || d > hi)
        return hb_err_set(HB_EUSAGE, gen, "%s needs an integer in [%g, %g], got '%s'", opt, lo, hi,
                          v ? v : "nothing");
    *out = (int64_t)d;
    return 0;
}
