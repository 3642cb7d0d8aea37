/* The bill kernel's shared declarations (docs/bill.md). */
#ifndef HB_KERNELS_BILL_INTERNAL_H
#define HB_KERNELS_BILL_INTERNAL_H

#include "kernels/kernel.h"

#include <stddef.h>
#include <stdint.h>

#define BILL_MAX_TIERS 16
#define BILL_MILLI 1000                   /* quantities are held in 1/1000 of the unit */
#define BILL_MAX_MILLI 1000000000000000LL /* 10^12 units */
#define BILL_MAX_PRICE 1000000000000LL    /* 10^6 currency per unit, in micro-currency */
#define BILL_MAX_CENTS 100000000000000LL  /* 10^12 currency, in cents */

/* A tiered tariff: tier k prices the quantity above from[k] (milli-units) up to
 * from[k+1] at price[k] (micro-currency per unit); fixed is cents per bill. */
typedef struct bill_tariff {
    int n;
    int64_t from[BILL_MAX_TIERS], price[BILL_MAX_TIERS];
    int64_t fixed;
} bill_tariff;

int bill_decimal(const char *s, int digits, int64_t max, int64_t *out);
int bill_tariff_parse(const char *tiers, const char *fixed, bill_tariff *t, char *msg, size_t len);
int bill_amounts(const bill_tariff *t, int64_t q, int64_t *cents, int64_t *total);
extern const hb_generator bill_meters_generator;


#endif
