/* The registry of kernels, by name. */
#include "kernels/kernel.h"

#include <string.h>

extern const hb_kernel hb_kernel_traffic;
extern const hb_kernel hb_kernel_risk;
extern const hb_kernel hb_kernel_index;
extern const hb_kernel hb_kernel_aggregate;

static const hb_kernel *const registry[] = {&hb_kernel_traffic, &hb_kernel_risk, &hb_kernel_index, &hb_kernel_aggregate, NULL};

const hb_kernel *const *hb_kernels(void) { return registry; }

const hb_kernel *hb_kernel_find(const char *name)
{
    for (const hb_kernel *const *k = registry; *k; k++)
        if (strcmp((*k)->name, name) == 0) return *k;
    return NULL;
}
