/* Per-day UTC offset table built from the C library's zone rules. */
#include "core/calendar.h"

#include "core/hb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_DAYS 4000000 /* about 11,000 years: beyond that the times are not times */

int hb_tz_valid(const char *name)
{
    if (strcmp(name, "UTC") == 0) return 1;
    /* zoneinfo's localtime is a link to the host's /etc/localtime: no zone of its own, and
     * the hosts of one job (or the sites of a merge) may each have another */
    if (!*name || name[0] == '/' || strstr(name, "..") || strlen(name) > 200 || strcmp(name, "localtime") == 0) return 0;
    char path[256];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char magic[4] = {0};
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    return n == 4 && memcmp(magic, "TZif", 4) == 0;
}

int hb_tz_select(const char *name)
{
    if (!hb_tz_valid(name)) return hb_err_set(HB_ECONFIG, "timezone", "unknown time zone '%s'", name);
    char buf[256];
    snprintf(buf, sizeof buf, ":%s", name);
    setenv("TZ", buf, 1);
    tzset();
    return 0;
}

static int offset_at(int64_t t, int32_t *off)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm)) return -1;
    *off = (int32_t)tm.tm_gmtoff;
    return 0;
}

static int fill_day(int64_t day, hb_tzday *d)
{
    int64_t start = day * 86400;
    int32_t a, b;
    if (offset_at(start, &a) || offset_at(start + 86399, &b)) return -1;
    d->off_a = a;
    d->off_b = b;
    d->trans = 86400;
    d->pad = 0;
    if (a == b) return 0;
    int64_t lo = start, hi = start + 86399; /* offset(lo) == a, offset(hi) == b */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        int32_t o;
        if (offset_at(mid, &o)) return -1;
        if (o == a) lo = mid;
        else hi = mid;
    }
    d->trans = (int32_t)(hi - start);
    return 0;
}

int hb_tzmap_cover(hb_tzmap *m, int64_t tmin, int64_t tmax)
{
    int64_t lo = hb_floordiv(tmin, 86400), hi = hb_floordiv(tmax, 86400);
    if (m->days && lo >= m->day0 && hi < m->day0 + m->ndays) return 0;
    if (m->days) {
        if (m->day0 < lo) lo = m->day0;
        if (m->day0 + m->ndays - 1 > hi) hi = m->day0 + m->ndays - 1;
    }
    if (hi - lo + 1 > MAX_DAYS || hi < lo)
        return hb_err_set(HB_EDATA, "time", "times span %lld days (from %lld to %lld s); at most %d days supported",
                          (long long)(hi - lo + 1), (long long)tmin, (long long)tmax, MAX_DAYS);
    /* day * 86400 and t + offset stay far inside int64 (near INT64_MIN both overflow) */
    if (tmin < -HB_TIME_LIMIT || tmax > HB_TIME_LIMIT)
        return hb_err_set(HB_EDATA, "time", "time %lld s is outside the times supported (within %g s of 1970, about "
                          "31 million years)", (long long)(tmin < -HB_TIME_LIMIT ? tmin : tmax), (double)HB_TIME_LIMIT);
    int64_t n = hi - lo + 1;
    hb_tzday *days = hb_malloc((size_t)n * sizeof *days);
    if (!days) return HB_EINTERNAL;
    for (int64_t d = lo; d <= hi; d++) {
        if (m->days && d >= m->day0 && d < m->day0 + m->ndays) {
            days[d - lo] = m->days[d - m->day0];
        } else if (fill_day(d, &days[d - lo])) {
            free(days);
            return hb_err_set(HB_EDATA, "time", "time %lld s cannot be converted to local time", (long long)(d * 86400));
        }
    }
    free(m->days);
    m->days = days;
    m->day0 = lo;
    m->ndays = n;
    return 0;
}

void hb_tzmap_free(hb_tzmap *m)
{
    free(m->days);
    m->days = NULL;
    m->ndays = 0;
}

int64_t hb_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void hb_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    /* beyond these (10^15 years) z + 719468 and era arithmetic could overflow */
    if (z > (int64_t)1 << 60) z = (int64_t)1 << 60;
    if (z < -((int64_t)1 << 60)) z = -((int64_t)1 << 60);
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int64_t hb_days_from_yyyymmdd(int64_t ymd)
{
    int64_t y = ymd / 10000;
    int m = (int)(ymd / 100 % 100), d = (int)(ymd % 100);
    if (ymd <= 0 || y > 99999999 || m < 1 || m > 12 || d < 1 || d > 31) return INT64_MIN;
    int64_t days = hb_days_from_civil(y, m, d);
    int64_t yy;
    int mm, dd;
    hb_civil_from_days(days, &yy, &mm, &dd);
    return (yy == y && mm == m && dd == d) ? days : INT64_MIN;
}
