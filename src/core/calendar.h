/* UTC to local wall-clock time without a time-zone call per row.
 *
 * For every UTC day in the covered range the map holds the UTC offset at the start of
 * the day, the offset after a transition, and the second of the day at which the
 * transition happens (86400 when none). Building it costs two localtime_r calls per
 * day plus a bisection on transition days; a lookup is one table read. */
#ifndef HB_TZMAP_H
#define HB_TZMAP_H

#include <stdint.h>

typedef struct hb_tzday {
    int32_t off_a, off_b, trans, pad;
} hb_tzday;

typedef struct hb_tzmap {
    int64_t day0, ndays;
    hb_tzday *days;
} hb_tzmap;

/* 1 when name is a time zone this machine knows (an IANA name in its zoneinfo). */
int hb_tz_valid(const char *name);
/* Selects the zone for this process (sets TZ); call before hb_tzmap_cover. */
int hb_tz_select(const char *name);
/* The times the calendar converts: within this many seconds of 1970 (about 31 million
 * years); a kernel checks narrower ranges of its own. */
#define HB_TIME_LIMIT ((int64_t)1000000000000000)
/* Not thread-safe. Extends the map to cover UTC times [tmin, tmax]; 65 when a time is
 * outside +-HB_TIME_LIMIT or the span is absurd. */
int hb_tzmap_cover(hb_tzmap *m, int64_t tmin, int64_t tmax);
void hb_tzmap_free(hb_tzmap *m);

static inline int64_t hb_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return q - ((a % b != 0) & ((a < 0) != (b < 0)));
}

/* Local time (seconds since the local epoch) of UTC time t; t must be covered. */
static inline int64_t hb_tzmap_local(const hb_tzmap *m, int64_t t)
{
    int64_t day = hb_floordiv(t, 86400);
    const hb_tzday *d = &m->days[day - m->day0];
    int32_t sec = (int32_t)(t - day * 86400);
    return t + (sec < d->trans ? d->off_a : d->off_b);
}

/* Days since 1970-01-01 of a civil date, and back (proleptic Gregorian). */
int64_t hb_days_from_civil(int64_t y, int m, int d);
void hb_civil_from_days(int64_t z, int64_t *y, int *m, int *d);
/* yyyymmdd to days; INT64_MIN when not a real date. */
int64_t hb_days_from_yyyymmdd(int64_t ymd);

#endif
