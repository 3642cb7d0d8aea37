/* The kernel registry as the job-file harness sees it: one kernel, "fz", whose option
 * table has an option of every type, so that the fuzzer reaches every value reader of
 * src/core/opts.c without linking the kernels themselves. */
#include "kernels/kernel.h"

#include <string.h>

static const hb_option fz_options[] = {
    {"text", HB_OPT_STRING, "a", 1, 0, NULL, "a string"},
    {"count", HB_OPT_INT, NULL, 1, 1000000, NULL, "an integer"},
    {"ratio", HB_OPT_FLOAT, "0.5", 0, 1, NULL, "a number"},
    {"bytes", HB_OPT_SIZE, "1M", 1, 1e15, NULL, "a size"},
    {"every", HB_OPT_DURATION, "60s", 0, 1e9, NULL, "a duration"},
    {"levels", HB_OPT_LIST, "50, 85", 0, 100, NULL, "a list"},
    {"flag", HB_OPT_BOOL, "false", 0, 0, NULL, "a boolean"},
    {"mode", HB_OPT_CHOICE, "dense", 1, 0, "dense|table", "a choice"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

static const hb_kernel fz = {.name = "fz", .summary = "fuzz", .options = fz_options, .default_chunk_rows = 1000};
static const hb_kernel *const all[] = {&fz, NULL};

const hb_kernel *const *hb_kernels(void) { return all; }

const hb_kernel *hb_kernel_find(const char *name) { return strcmp(name, "fz") == 0 ? &fz : NULL; }

/* No plugins in the harness: none failed to load. */
const char *hb_plugins_note(char *buf, size_t len)
{
    if (len) buf[0] = '\0';
    return buf;
}
