/* The names of the assets and portfolios (DESIGN.md 4, 4.2): the optional string
 * datasets /market/assets [A] and /portfolios/names [P] of the input, which become the
 * values of the asset and portfolio coordinates of /risk. */
#include "kernels/risk/internal.h"

#include "core/hb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not collective. Reads the string dataset `name` of group into a block of n names of
 * *width bytes each, NUL-padded (n < 0: as many as it holds, their number in *got);
 * *names stays NULL when the dataset is absent. */
static int read_names(risk *r, const char *group, const char *name, int64_t n, char **names, size_t *width,
                      int64_t *got)
{
    hb_step_ctx *ctx = r->ctx;
    char path[256];
    snprintf(path, sizeof path, "%s/%s", group, name);
    *names = NULL;
    *width = 0;
    if (!hb_in_exists(ctx->in, path)) return 0;
    const char *const cols[1] = {name};
    hb_table *t = NULL;
    hb_strs s = {0};
    HB_CALL(hb_table_open_any(ctx->in, group, cols, 1, &t));
    int rc = 0;
    if (n < 0) n = hb_table_rows(t);
    if (got) *got = n;
    if (hb_table_kind(t, 0) != HB_COL_STRING)
        rc = hb_err_set(HB_EDATA, ctx->input, "%s holds numbers; names are strings (fixed or variable length)", path);
    else if (hb_table_rows(t) != n)
        rc = hb_err_set(HB_EDATA, ctx->input, "%s has %lld names for %lld %s", path, (long long)hb_table_rows(t),
                        (long long)n, strcmp(group, "/market") == 0 ? "assets" : "portfolios");
    if (rc == 0) rc = hb_table_read_str(t, 0, 0, n, &s);
    size_t w = 1;
    for (int64_t i = 0; rc == 0 && i < n; i++)
        if (s.off[i + 1] - s.off[i] > w) w = (size_t)(s.off[i + 1] - s.off[i]);
    char *b = rc == 0 ? hb_calloc((size_t)(n ? n : 1), w) : NULL;
    if (rc == 0 && !b) rc = HB_EINTERNAL;
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        const size_t len = (size_t)(s.off[i + 1] - s.off[i]);
        if (memchr(s.bytes + s.off[i], '\0', len)) {
            rc = hb_err_set(HB_EDATA, ctx->input, "%s[%lld] holds a NUL byte", path, (long long)i);
            break;
        }
        memcpy(b + (size_t)i * w, s.bytes + s.off[i], len);
    }
    hb_strs_free(&s);
    hb_table_close(t);
    if (rc) return free(b), rc;
    *names = b;
    *width = w;
    return 0;
}

int risk_load_asset_names(risk *r)
{
    if (r->asset_names) return 0;
    return hb_agree(read_names(r, "/market", "assets", r->A, &r->asset_names, &r->asset_width, NULL));
}

int risk_load_portfolio_names(risk *r, int64_t *n)
{
    if (r->portfolio_names) return 0;
    return hb_agree(read_names(r, "/portfolios", "names", -1, &r->portfolio_names, &r->portfolio_width, n));
}

int risk_load_names(risk *r)
{
    int rc = r->asset_names ? 0 : read_names(r, "/market", "assets", r->A, &r->asset_names, &r->asset_width, NULL);
    if (rc == 0 && !r->portfolio_names) /* unless the transactions named their portfolios */
        rc = read_names(r, "/portfolios", "names", r->P, &r->portfolio_names, &r->portfolio_width, NULL);
    return hb_agree(rc);
}
