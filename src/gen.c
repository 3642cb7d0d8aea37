/* `h5batch gen NAME`: the generators are the kernels' (hb_kernel.generator, built in or
 * from plugins); this file reads their command lines and makes their files safely. */
#include "gen.h"

#include "core/commit.h"
#include "core/hb.h"
#include "core/opts.h"
#include "io/io.h"
#include "kernels/kernel.h"

#include <stdio.h>
#include <string.h>

/* The options every generator takes, read here. */
static const hb_option common_options[] = {
    {"output", HB_OPT_STRING, NULL, 1, 0, NULL, "the file to write (-o; required)"},
    {"force", HB_OPT_BOOL, "false", 1, 0, NULL, "replace an existing file"},
    {"quiet", HB_OPT_BOOL, "false", 1, 0, NULL, "no progress messages (-q)"},
    {"verbose", HB_OPT_BOOL, "false", 1, 0, NULL, "more messages (-v)"},
    {"help", HB_OPT_BOOL, "false", 1, 0, NULL, "print these options (-h)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL}};

static const char *const aliases[] = {"-o", "output", "-q", "quiet", "-v", "verbose", "-h", "help", NULL};

/* The generators' names, comma-separated, into buf. */
static void generator_names(char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (const hb_kernel *const *k = hb_kernels(); *k; k++)
        if ((*k)->generator && n < len)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", (*k)->generator->name);
}

/* Rank 0: `h5batch gen --help`, the generators and what they are for. */
static void print_generators(void)
{
    if (hb_rank != 0) return;
    printf("usage: h5batch gen NAME -o FILE [--OPTION VALUE]... [--force] [-q|-v]\n\ngenerators:\n");
    for (const hb_kernel *const *k = hb_kernels(); *k; k++)
        if ((*k)->generator) printf("  %-10s %s\n", (*k)->generator->name, (*k)->generator->summary);
    printf("\nh5batch gen NAME --help lists the options of one.\n");
}

/* Rank 0: `h5batch gen NAME --help`, its option table. */
static void print_options(const hb_generator *g)
{
    if (hb_rank != 0) return;
    printf("h5batch gen %s: %s\n\nusage: h5batch gen %s -o FILE [--OPTION VALUE]... [--force] [-q|-v]\n\noptions:\n",
           g->name, g->summary, g->name);
    hb_opt_print_cli(g->options, "  ");
    printf("\ncommon options:\n");
    hb_opt_print_cli(common_options, "  ");
}

/* Collective. Creates the file under a temporary name, lets the generator write it and
 * commits it when every rank has succeeded. */
static int generate(const hb_generator *g, const hb_optset *opts, const char *path, int force)
{
    HB_CALL(hb_output_check(path, force));
    char tmp[4300];
    hb_out *out = NULL;
    /* a unique temporary rank 0 creates exclusively: never a link planted at a fixed name */
    HB_CALL(hb_tmp_create(path, tmp, sizeof tmp));
    int rc = hb_agree(hb_out_create(tmp, &out));
    if (rc == 0) rc = g->write(opts, out);
    if (out) {
        int crc = hb_out_close(out);
        if (rc == 0) rc = crc;
    }
    return hb_commit(tmp, path, rc);
}

int hb_gen_main(int argc, char **argv)
{
    char names[512];
    generator_names(names, sizeof names);
    if (argc < 1)
        return hb_err_set(HB_EUSAGE, "gen", "usage: h5batch gen NAME -o FILE [options], NAME one of: %s", names);
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) return print_generators(), 0;
    const hb_generator *g = hb_generator_find(argv[0]);
    if (!g) {
        char what[1024];
        snprintf(what, sizeof what, "unknown generator '%.256s' (this h5batch has: %s)", argv[0], names);
        return hb_plugins_missing(HB_EUSAGE, "gen", what);
    }
    char where[96];
    snprintf(where, sizeof where, "gen %s", g->name);
    const hb_option *const tables[] = {common_options, g->options, NULL};
    hb_args a;
    int rc = hb_args_parse(where, tables, aliases, argc - 1, argv + 1, &a);
    if (rc == 0 && a.npos > 0)
        rc = hb_err_set(HB_EUSAGE, where, "unknown %s '%s' (h5batch %s --help lists the options)",
                        a.pos[0][0] == '-' ? "option" : "argument", a.pos[0], where);
    const hb_optset common = hb_args_opts(&a, common_options), opts = hb_args_opts(&a, g->options);
    if (rc == 0 && hb_opt_bool(&common, "help")) {
        print_options(g);
        return hb_args_free(&a), 0;
    }
    if (rc == 0 && hb_opt_bool(&common, "quiet")) hb_log_level = 0;
    if (rc == 0 && hb_opt_bool(&common, "verbose")) hb_log_level = 2;
    if (rc == 0 && g->check) rc = g->check(&opts);
    const char *path = hb_opt_str(&common, "output");
    if (rc == 0 && !path) rc = hb_err_set(HB_EUSAGE, where, "-o FILE is required");
    if (rc == 0) rc = generate(g, &opts, path, hb_opt_bool(&common, "force"));
    hb_args_free(&a);
    return rc;
}
