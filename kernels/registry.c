/* The registry of kernels: the built-in ones, then those of the plugins found in
 * H5BATCH_PLUGIN_PATH (DESIGN.md 8). Every table passes the same checks, so that a
 * plugin kernel is used, listed and validated exactly like a built-in one. */
#include "kernels/kernel.h"

#include "core/hb.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KERNELS 64

/* The built-in kernels: every folder kernels/NAME/ with a NAME.c defining hb_kernel_NAME,
 * listed by the Makefile in builtins.h (docs/architecture.md, "Adding a kernel"). */
#define HB_BUILTIN(name) extern const hb_kernel hb_kernel_##name;
#include "builtins.h"
#undef HB_BUILTIN
#define HB_BUILTIN(name) &hb_kernel_##name,
static const hb_kernel *const builtins[] = {
#include "builtins.h"
};
#undef HB_BUILTIN

static const hb_kernel *registry[MAX_KERNELS + 1]; /* NULL-terminated */
static char *origin[MAX_KERNELS];                  /* the plugin's path; NULL: built in */
static int nreg, builtins_done;
static const char *loading;               /* the plugin whose hb_plugin_init runs */
static char **failed;                     /* "PATH: why" of each plugin that could not be loaded */
static int nfailed;
static const char *const *reserved_names; /* the driver's own commands */

/* Names a generator's options may not take: the driver reads them itself. */
static const char *const driver_options[] = {"output", "force", "quiet", "verbose", "help", NULL};

static void add_builtins(void)
{
    if (builtins_done) return;
    builtins_done = 1;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) hb_kernel_register(builtins[i]);
}

/* Who a registration error is about: the plugin being loaded, or the registry. */
static const char *who(void) { return loading ? loading : "registry"; }

/* 1 when name is a word of lowercase letters, digits, '_' and '-' that starts with a letter. */
static int good_name(const char *name)
{
    if (!name || !*name || strlen(name) > 63 || name[0] < 'a' || name[0] > 'z') return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')) return 0;
    return 1;
}

/* The registered kernel whose generator or command is called name, or NULL. */
static const hb_kernel *owner_of_generator(const char *name)
{
    for (int i = 0; i < nreg; i++)
        if (registry[i]->generator && strcmp(registry[i]->generator->name, name) == 0) return registry[i];
    return NULL;
}

static const hb_kernel *owner_of_command(const char *name, const hb_command **cmd)
{
    for (int i = 0; i < nreg; i++)
        for (const hb_command *const *c = registry[i]->commands; c && *c; c++)
            if (strcmp((*c)->name, name) == 0) {
                if (cmd) *cmd = *c;
                return registry[i];
            }
    return NULL;
}

/* How a clash with kernel k is described: "the built-in kernel traffic". */
static void describe_owner(const hb_kernel *k, char *buf, size_t len)
{
    const char *from = hb_kernel_origin(k);
    if (from) snprintf(buf, len, "kernel %s of plugin %s", k->name, from);
    else snprintf(buf, len, "the built-in kernel %s", k->name);
}

/* 78 unless the generator of kernel k is complete and its name is free. */
static int check_generator(const hb_kernel *k)
{
    const hb_generator *g = k->generator;
    char other[4200];
    HB_CHECK(good_name(g->name) && g->options && g->write, HB_ECONFIG, who(),
             "kernel %s: its generator needs a name (lowercase letters, digits, '_', '-'), options and write", k->name);
    const hb_kernel *o = owner_of_generator(g->name);
    if (o) {
        describe_owner(o, other, sizeof other);
        return hb_err_set(HB_ECONFIG, who(), "kernel %s: generator '%s' is taken by %s", k->name, g->name, other);
    }
    for (const hb_option *opt = g->options; opt->name; opt++)
        for (const char *const *d = driver_options; *d; d++)
            HB_CHECK(strcmp(opt->name, *d) != 0, HB_ECONFIG, who(),
                     "kernel %s: generator option '%s' is one the driver reads itself", k->name, opt->name);
    return 0;
}

/* 78 unless every command of kernel k is complete and its name is free. */
static int check_commands(const hb_kernel *k)
{
    char other[4200];
    for (const hb_command *const *c = k->commands; c && *c; c++) {
        HB_CHECK(good_name((*c)->name) && (*c)->main, HB_ECONFIG, who(),
                 "kernel %s: a command needs a name (lowercase letters, digits, '_', '-') and main", k->name);
        for (const char *const *r = reserved_names; r && *r; r++)
            HB_CHECK(strcmp(*r, (*c)->name) != 0, HB_ECONFIG, who(), "kernel %s: command '%s' is a built-in command",
                     k->name, (*c)->name);
        const hb_kernel *o = owner_of_command((*c)->name, NULL);
        for (const hb_command *const *d = k->commands; !o && d != c; d++)
            if (strcmp((*d)->name, (*c)->name) == 0) o = k;
        if (o) {
            describe_owner(o, other, sizeof other);
            return hb_err_set(HB_ECONFIG, who(), "kernel %s: command '%s' is taken by %s", k->name, (*c)->name,
                              o == k ? "itself" : other);
        }
    }
    return 0;
}

/* 78 unless every entry of a description list (inputs or outputs) has a kind and dims. */
static int check_descs(const hb_kernel *k, const char *which, const hb_dataset_desc *d)
{
    for (int i = 0; d && d[i].name; i++)
        HB_CHECK(d[i].kind && d[i].dims, HB_ECONFIG, who(), "kernel %s: %s entry %s needs a kind and dims", k->name,
                 which, d[i].name);
    return 0;
}

int hb_kernel_register(const hb_kernel *k)
{
    add_builtins();
    HB_CHECK(k && good_name(k->name), HB_ECONFIG, who(),
             "a kernel needs a name of lowercase letters, digits, '_' and '-', starting with a letter");
    HB_CHECK(k->summary && k->options && k->setup && k->map && k->finalize && k->default_chunk_rows >= 1,
             HB_ECONFIG, who(), "kernel %s: summary, options, setup, map, finalize and default_chunk_rows are required",
             k->name);
    HB_CHECK(!k->save == !k->load, HB_ECONFIG, who(), "kernel %s: save and load come together", k->name);
    const hb_kernel *o = hb_kernel_find(k->name);
    if (o) {
        char other[4200];
        describe_owner(o, other, sizeof other);
        return hb_err_set(HB_ECONFIG, who(), "kernel '%s' is already registered: %s", k->name, other);
    }
    HB_CALL(check_descs(k, "inputs", k->inputs));
    HB_CALL(check_descs(k, "outputs", k->outputs));
    if (k->generator) HB_CALL(check_generator(k));
    HB_CALL(check_commands(k));
    HB_CHECK(nreg < MAX_KERNELS, HB_ECONFIG, who(), "more than %d kernels", MAX_KERNELS);
    char *from = NULL;
    if (loading && !(from = hb_strdup(loading))) return HB_EINTERNAL;
    origin[nreg] = from;
    registry[nreg++] = k;
    return 0;
}

const hb_kernel *const *hb_kernels(void)
{
    add_builtins();
    return registry;
}

const hb_kernel *hb_kernel_find(const char *name)
{
    add_builtins();
    for (int i = 0; i < nreg; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

const char *hb_kernel_origin(const hb_kernel *k)
{
    for (int i = 0; i < nreg; i++)
        if (registry[i] == k) return origin[i];
    return NULL;
}

const hb_generator *hb_generator_find(const char *name)
{
    add_builtins();
    const hb_kernel *k = owner_of_generator(name);
    return k ? k->generator : NULL;
}

const hb_command *hb_command_find(const char *name, const hb_kernel **owner)
{
    add_builtins();
    const hb_command *c = NULL;
    const hb_kernel *k = owner_of_command(name, &c);
    if (owner) *owner = k;
    return c;
}

/* The address of symbol name in plugin h, or NULL. */
static void *symbol(void *h, const char *name)
{
    dlerror();
    return dlsym(h, name);
}

/* Loads the plugin at path: its ABI version first, then hb_plugin_init. */
static int load_plugin(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        size_t n = strlen(path);
        if (why && strncmp(why, path, n) == 0 && strncmp(why + n, ": ", 2) == 0) why += n + 2;
        return hb_err_set(HB_ECONFIG, path, "cannot load this plugin: %s", why ? why : "unknown reason");
    }
    const int *abi = symbol(h, "hb_plugin_abi");
    void *init_sym = symbol(h, "hb_plugin_init");
    int rc = 0;
    if (!abi)
        rc = hb_err_set(HB_ECONFIG, path,
                        "not an h5batch plugin: it defines no hb_plugin_abi (write HB_PLUGIN_ABI; from "
                        "h5batch/kernel.h once in its source)");
    else if (*abi != HB_ABI_VERSION)
        rc = hb_err_set(HB_ECONFIG, path,
                        "plugin built for h5batch plugin ABI version %d, but this h5batch has ABI version %d: "
                        "rebuild it against this h5batch's headers (pkg-config --cflags h5batch-plugin)",
                        *abi, HB_ABI_VERSION);
    else if (!init_sym)
        rc = hb_err_set(HB_ECONFIG, path, "not an h5batch plugin: it defines no function hb_plugin_init");
    if (rc) {
        dlclose(h);
        return rc;
    }
    int (*init)(int);
    memcpy(&init, &init_sym, sizeof init);
    int before = nreg;
    loading = path;
    rc = init(HB_ABI_VERSION);
    loading = NULL;
    if (rc != 0 && hb_err_code()) return hb_err_code();
    if (rc != 0) return hb_err_set(HB_ECONFIG, path, "hb_plugin_init failed with status %d", rc);
    HB_CHECK(nreg > before, HB_ECONFIG, path, "hb_plugin_init registered no kernel (hb_kernel_register)");
    return 0; /* never unloaded: its tables serve until the process ends */
}

static int is_shared_object(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 3 && strcmp(e->d_name + n - 3, ".so") == 0;
}

/* Keeps the recorded error of a plugin that could not be loaded for hb_plugins_failure
 * and clears it: the commands that do not need the plugin go on. */
static int keep_failure(void)
{
    char **grown = realloc(failed, (size_t)(nfailed + 1) * sizeof *failed);
    char *msg = hb_strdup(hb_err_msg());
    if (!grown || !msg) {
        free(msg);
        if (grown) failed = grown;
        return HB_EINTERNAL;
    }
    failed = grown;
    failed[nfailed++] = msg;
    hb_err_clear();
    return 0;
}

/* Loads the *.so files of dir in name order; a folder that does not exist is skipped,
 * as PATH does. A plugin that cannot be loaded is kept in failed and the next one tried. */
static int load_dir(const char *dir, char ***seen, int *nseen)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, is_shared_object, alphasort);
    if (n < 0) {
        if (errno == ENOENT) return 0;
        hb_err_set(HB_ECONFIG, "H5BATCH_PLUGIN_PATH", "cannot read plugin folder '%s': %s", dir, strerror(errno));
        return keep_failure();
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
        char *real = realpath(path, NULL);
        int dup = 0;
        for (int j = 0; real && j < *nseen && !dup; j++) dup = strcmp((*seen)[j], real) == 0;
        char **grown = real && !dup ? realloc(*seen, (size_t)(*nseen + 1) * sizeof **seen) : NULL;
        if (grown) *seen = grown, (*seen)[(*nseen)++] = real;
        else free(real);
        if (rc == 0 && !dup && load_plugin(path) != 0) rc = keep_failure();
        free(list[i]);
    }
    free(list);
    return rc;
}

int hb_plugins_load(const char *const *reserved)
{
    reserved_names = reserved;
    add_builtins();
    HB_CALL(hb_err_code()); /* a built-in table that does not pass is a bug, reported like any */
    const char *env = getenv("H5BATCH_PLUGIN_PATH");
    if (!env || !*env) return 0;
    char *dirs = hb_strdup(env);
    if (!dirs) return HB_EINTERNAL;
    char **seen = NULL;
    int nseen = 0, rc = 0;
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d && rc == 0; d = strtok_r(NULL, ":", &save))
        rc = load_dir(d, &seen, &nseen);
    for (int i = 0; i < nseen; i++) free(seen[i]);
    free(seen);
    free(dirs);
    return rc;
}

int hb_plugins_failed(void) { return nfailed; }

const char *hb_plugins_note(char *buf, size_t len)
{
    if (!nfailed) snprintf(buf, len, "%s", "");
    else
        snprintf(buf, len, ", and %s: %s", nfailed == 1 ? "a plugin could not be loaded" : "plugins could not be loaded, the first",
                 failed[0]);
    return buf;
}

void hb_plugins_warn(void)
{
    for (int i = 0; i < nfailed; i++) hb_warn("%s (its kernels are not available)", failed[i]);
}

int hb_plugins_missing(int code, const char *where, const char *what)
{
    char note[1200];
    return hb_err_set(nfailed ? HB_ECONFIG : code, where, "%s%s", what, hb_plugins_note(note, sizeof note));
}
