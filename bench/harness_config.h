/* harness_config.h: the configurations a workload runs under: the peer
 * allocators and hakmem through LD_PRELOAD, hakmem linked statically, and
 * hakmem's fault paths (lazy-zero policies, the pager). */
#ifndef BENCH_HARNESS_CONFIG_H
#define BENCH_HARNESS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum config_role {
  ROLE_PEER,       /* glibc, mimalloc, jemalloc, tcmalloc: the baseline */
  ROLE_HAKMEM,     /* hakmem as a user gets it: preloaded or linked */
  ROLE_FAULT_PATH, /* the same hakmem build with a fault path chosen */
};

#define CONFIG_MAX_ENV 4
#define CONFIG_MAX 16
#define SKIP_MAX 16

struct bench_config {
  char name[24];   /* short id: glibc, hakmem-static, pager-direct, ... */
  char label[80];  /* what it is, for the report */
  enum config_role role;
  char preload[512]; /* LD_PRELOAD, or "" */
  bool static_binary; /* run <workload>-static instead of <workload> */
  bool hakmem;        /* hakmem serves: HAKMEM_STATS=1 and a ledger */
  char expect[16];    /* the allocator the workload must report */
  const char *env[CONFIG_MAX_ENV]; /* extra NAME=value settings */
};

/* Where things are, and what to include. */
struct config_request {
  const char *bindir;    /* the workload programs */
  const char *hakmem_so; /* the built libhakmem.so */
  const char *peer_dir;  /* where the peers' .so files are; NULL = search */
  const char *only;      /* comma-separated names to keep; NULL = all */
  bool uffd_built;       /* configured with --enable-uffd */
};

/* Configurations skipped, each with its reason. */
struct skip_list {
  size_t n;
  char line[SKIP_MAX][200];
};

/* Fill out[] with every configuration available here, in report order;
 * those that cannot run are recorded in skips with a reason. Returns how
 * many were filled. */
size_t configs_detect(const struct config_request *req, struct bench_config *out,
                      struct skip_list *skips);

/* Find a configuration by name; NULL when absent. */
const struct bench_config *config_find(const struct bench_config *configs, size_t n,
                                       const char *name);

/* The environment a run of c gets: ours without LD_PRELOAD and the
 * variables that tune an allocator (HAKMEM_*, MALLOC_*, GLIBC_TUNABLES,
 * MIMALLOC_*, TCMALLOC_*: configs_detect notes those it drops), plus
 * c's settings. Free with config_environment_free. */
char **config_environment(const struct bench_config *c);

/* Whether entry ("NAME=value") tunes an allocator: glibc's MALLOC_* and
 * GLIBC_TUNABLES, jemalloc's MALLOC_CONF, mimalloc's, tcmalloc's or
 * hakmem's variables. */
bool config_tunes_an_allocator(const char *entry);
void config_environment_free(char **env);

/* Whether name is in the comma-separated list (NULL list: everything is). */
bool name_in_list(const char *list, const char *name);

void skip_add(struct skip_list *skips, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* BENCH_HARNESS_CONFIG_H */
