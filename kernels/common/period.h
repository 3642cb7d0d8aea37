/* Calendar periods of a local day, as the calendar keys of DESIGN.md 4.4 define them:
 * the date yyyymmdd, the ISO week yyyyww (the year of its Thursday) and the month
 * yyyymm, all integers. The same arithmetic as the aggregate kernel's calendar table
 * (kernels/aggregate/aggregate.c, calendar_cover), for kernels that need a period per
 * reading. Not collective; allocates nothing. */
#ifndef HB_COMMON_PERIOD_H
#define HB_COMMON_PERIOD_H

#include "core/calendar.h"

#include <stdint.h>

/* Not collective. The ISO day of the week of day d since 1970-01-01: Monday 0 ... Sunday 6. */
static inline int hb_day_of_week(int64_t d) { return (int)((d % 7 + 7 + 3) % 7); /* 1970-01-01: a Thursday */ }

/* Not collective. The local date yyyymmdd of day d. */
static inline int64_t hb_period_date(int64_t d)
{
    int64_t y;
    int m, dd;
    hb_civil_from_days(d, &y, &m, &dd);
    return y * 10000 + m * 100 + dd;
}

/* Not collective. The ISO week yyyyww of day d. */
static inline int64_t hb_period_week(int64_t d)
{
    int64_t thu = d - hb_day_of_week(d) + 3, y; /* ISO weeks belong to the year of their Thursday */
    int m, dd;
    hb_civil_from_days(thu, &y, &m, &dd);
    return y * 100 + (thu - hb_days_from_civil(y, 1, 1)) / 7 + 1;
}

/* Not collective. The month yyyymm of day d. */
static inline int64_t hb_period_month(int64_t d)
{
    int64_t y;
    int m, dd;
    hb_civil_from_days(d, &y, &m, &dd);
    return y * 100 + m;
}

#endif
