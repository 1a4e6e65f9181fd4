/* harness_config.c: which configurations can run here, and the
 * environment of each (see harness_config.h). */
#define _GNU_SOURCE 1
#include "harness_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness_run.h"

extern char **environ;

#define PROBE_TIMEOUT_S 20

static const char *const peer_search_dirs[] = {
    "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
    "/usr/local/lib",
};

static const struct {
  const char *name, *soname, *package;
} peers[] = {
    {"mimalloc", "libmimalloc.so.2", "libmimalloc-dev"},
    {"jemalloc", "libjemalloc.so.2", "libjemalloc-dev"},
    {"tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"},
};

void skip_add(struct skip_list *skips, const char *fmt, ...) {
  if (skips->n >= SKIP_MAX)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(skips->line[skips->n++], sizeof skips->line[0], fmt, ap);
  va_end(ap);
}

bool name_in_list(const char *list, const char *name) {
  if (list == NULL || list[0] == '\0')
    return true;
  size_t len = strlen(name);
  for (const char *p = list; *p;) {
    size_t item = strcspn(p, ",");
    if (item == len && strncmp(p, name, len) == 0)
      return true;
    p += item + (p[item] == ',');
  }
  return false;
}

/* The first readable dir/soname; false when none is. */
static bool find_peer(const char *peer_dir, const char *soname, char *path, size_t size) {
  size_t ndirs = peer_dir ? 1 : sizeof peer_search_dirs / sizeof peer_search_dirs[0];
  for (size_t i = 0; i < ndirs; i++) {
    snprintf(path, size, "%s/%s", peer_dir ? peer_dir : peer_search_dirs[i], soname);
    if (access(path, R_OK) == 0)
      return true;
  }
  return false;
}

static struct bench_config *add(struct bench_config *out, size_t *n, const char *name,
                                const char *label, enum config_role role, const char *expect) {
  struct bench_config *c = &out[(*n)++];
  memset(c, 0, sizeof *c);
  snprintf(c->name, sizeof c->name, "%s", name);
  snprintf(c->label, sizeof c->label, "%s", label);
  snprintf(c->expect, sizeof c->expect, "%s", expect);
  c->role = role;
  return c;
}

static void add_peers(const struct config_request *req, struct bench_config *out, size_t *n,
                      struct skip_list *skips) {
  add(out, n, "glibc", "glibc malloc (no preload)", ROLE_PEER, "glibc");
  for (size_t i = 0; i < sizeof peers / sizeof peers[0]; i++) {
    char path[512];
    if (!find_peer(req->peer_dir, peers[i].soname, path, sizeof path)) {
      skip_add(skips, "skip %s: %s not found (install %s)", peers[i].name, peers[i].soname,
               peers[i].package);
      continue;
    }
    char label[80];
    snprintf(label, sizeof label, "%s (LD_PRELOAD=%s)", peers[i].name, peers[i].soname);
    struct bench_config *c = add(out, n, peers[i].name, label, ROLE_PEER, peers[i].name);
    snprintf(c->preload, sizeof c->preload, "%s", path);
  }
}

static struct bench_config *add_hakmem(const struct config_request *req, struct bench_config *out,
                                       size_t *n, const char *name, const char *label,
                                       enum config_role role) {
  struct bench_config *c = add(out, n, name, label, role, "hakmem");
  c->hakmem = true;
  snprintf(c->preload, sizeof c->preload, "%s", req->hakmem_so);
  return c;
}

/* Whether the pager starts: run pager_probe under hakmem with HAKMEM_UFFD=1. */
static bool pager_starts(const struct config_request *req, char *why, size_t size) {
  struct bench_config probe_config = {.hakmem = true, .env = {"HAKMEM_UFFD=1"}};
  snprintf(probe_config.preload, sizeof probe_config.preload, "%s", req->hakmem_so);
  char path[512];
  snprintf(path, sizeof path, "%s/pager_probe", req->bindir);
  char *argv[] = {path, NULL};
  char **env = config_environment(&probe_config);
  struct run_output out;
  bool started = false;
  if (run_program(argv, env, PROBE_TIMEOUT_S, &out) != 0) {
    snprintf(why, size, "cannot run %.140s", path);
  } else {
    started = run_succeeded(&out) && strstr(out.out, "pager active=1") != NULL;
    if (!started)
      snprintf(why, size, "the pager did not start: %.*s", (int)strcspn(out.err, "\n"),
               out.err[0] ? out.err : out.out);
    run_output_free(&out);
  }
  config_environment_free(env);
  return started;
}

static void add_pager(const struct config_request *req, struct bench_config *out, size_t *n,
                      struct skip_list *skips) {
  char why[160];
  if (!req->uffd_built) {
    skip_add(skips, "skip pager-fault, pager-direct: built without --enable-uffd");
    return;
  }
  if (!pager_starts(req, why, sizeof why)) {
    skip_add(skips, "skip pager-fault, pager-direct: %s", why);
    return;
  }
  struct bench_config *c = add_hakmem(req, out, n, "pager-fault",
                                      "hakmem, pager serving faults (HAKMEM_UFFD=1 PAGER_DIRECT=0)",
                                      ROLE_FAULT_PATH);
  c->env[0] = "HAKMEM_UFFD=1";
  c->env[1] = "HAKMEM_PAGER_DIRECT=0";
  c = add_hakmem(req, out, n, "pager-direct",
                 "hakmem, pager direct supply (HAKMEM_UFFD=1 PAGER_DIRECT=1)", ROLE_FAULT_PATH);
  c->env[0] = "HAKMEM_UFFD=1";
  c->env[1] = "HAKMEM_PAGER_DIRECT=1";
}

static void add_hakmem_all(const struct config_request *req, struct bench_config *out, size_t *n,
                           struct skip_list *skips) {
  static const struct {
    const char *name, *label, *env;
  } kernel_paths[] = {
      {"hakmem-lz0", "hakmem, kernel path, lazy zero off (SS_LAZY_ZERO=0)", "HAKMEM_SS_LAZY_ZERO=0"},
      {"hakmem-lz1", "hakmem, MADV_DONTNEED lazy zero (SS_LAZY_ZERO=1)", "HAKMEM_SS_LAZY_ZERO=1"},
      {"hakmem-lz2", "hakmem, MADV_FREE lazy zero (SS_LAZY_ZERO=2)", "HAKMEM_SS_LAZY_ZERO=2"},
      {"hakmem-thp", "hakmem, every region in huge pages (HUGE_THP=2)", "HAKMEM_HUGE_THP=2"},
  };
  if (req->hakmem_so == NULL || access(req->hakmem_so, R_OK) != 0) {
    skip_add(skips, "skip hakmem and its fault paths: %s not built",
             req->hakmem_so ? req->hakmem_so : "libhakmem.so");
    return;
  }
  add_hakmem(req, out, n, "hakmem", "hakmem, default options (LD_PRELOAD)", ROLE_HAKMEM);
  char path[512];
  snprintf(path, sizeof path, "%s/random_mixed-static", req->bindir);
  if (access(path, X_OK) == 0) {
    struct bench_config *c = add(out, n, "hakmem-static", "hakmem, linked statically (libhakmem.a)",
                                 ROLE_HAKMEM, "hakmem");
    c->hakmem = c->static_binary = true;
  } else {
    skip_add(skips, "skip hakmem-static: %s not built", path);
  }
  for (size_t i = 0; i < sizeof kernel_paths / sizeof kernel_paths[0]; i++) {
    struct bench_config *c = add_hakmem(req, out, n, kernel_paths[i].name, kernel_paths[i].label,
                                        ROLE_FAULT_PATH);
    c->env[0] = kernel_paths[i].env;
  }
  add_pager(req, out, n, skips);
}

/* Every configuration runs its allocator with its defaults, whatever the
 * shell that started the harness had set. */
bool config_tunes_an_allocator(const char *entry) {
  static const char *const prefixes[] = {"MALLOC_", "GLIBC_TUNABLES=", "JE_MALLOC_CONF=", "MIMALLOC_",
                                         "TCMALLOC_", "HAKMEM_"};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (strncmp(entry, prefixes[i], strlen(prefixes[i])) == 0)
      return true;
  return false;
}

static bool inherited(const char *entry) {
  return strncmp(entry, "LD_PRELOAD=", 11) != 0 && !config_tunes_an_allocator(entry);
}

/* Name the variables of ours that no run gets, in skips. */
static void note_dropped_variables(struct skip_list *skips) {
  char names[120] = ""; /* with the words around it, within a skip line */
  size_t used = 0, unnamed = 0;
  for (size_t i = 0; environ[i]; i++) {
    if (inherited(environ[i]))
      continue;
    size_t len = strcspn(environ[i], "=");
    if (used + len + 2 < sizeof names)
      used += (size_t)snprintf(names + used, sizeof names - used, "%s%.*s", used ? ", " : "", (int)len,
                               environ[i]);
    else
      unnamed++;
  }
  const char *what = "not passed on (each allocator runs with its defaults)";
  if (used && unnamed)
    skip_add(skips, "%s: %s and %zu more", what, names, unnamed);
  else if (used)
    skip_add(skips, "%s: %s", what, names);
  else if (unnamed)
    skip_add(skips, "%s: %zu variables", what, unnamed);
}

size_t configs_detect(const struct config_request *req, struct bench_config *out,
                      struct skip_list *skips) {
  struct bench_config all[CONFIG_MAX];
  size_t n = 0, kept = 0;
  add_peers(req, all, &n, skips);
  add_hakmem_all(req, all, &n, skips);
  note_dropped_variables(skips);
  for (size_t i = 0; i < n; i++)
    if (name_in_list(req->only, all[i].name))
      out[kept++] = all[i];
  return kept;
}

const struct bench_config *config_find(const struct bench_config *configs, size_t n,
                                       const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(configs[i].name, name) == 0)
      return &configs[i];
  return NULL;
}

char **config_environment(const struct bench_config *c) {
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = calloc(n + CONFIG_MAX_ENV + 3, sizeof *env);
  if (env == NULL)
    abort();
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (inherited(environ[i]))
      env[k++] = strdup(environ[i]);
  if (c->preload[0] && !c->static_binary && asprintf(&env[k++], "LD_PRELOAD=%s", c->preload) < 0)
    abort();
  if (c->hakmem)
    env[k++] = strdup("HAKMEM_STATS=1");
  for (size_t i = 0; i < CONFIG_MAX_ENV && c->env[i]; i++)
    env[k++] = strdup(c->env[i]);
  for (size_t i = 0; i < k; i++)
    if (env[i] == NULL)
      abort();
  return env;
}

void config_environment_free(char **env) {
  for (size_t i = 0; env[i]; i++)
    free(env[i]);
  free(env);
}
