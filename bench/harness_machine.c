/* harness_machine.c: machine description and package versions (see
 * harness_machine.h). */
#define _GNU_SOURCE 1
#include "harness_machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static const struct {
  const char *what, *package;
} packages[] = {
    {"glibc", "libc6"},
    {"mimalloc", "libmimalloc2.0"},
    {"jemalloc", "libjemalloc2"},
    {"tcmalloc", "libtcmalloc-minimal4"},
};

static void trim(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
}

/* The value of the first "key<blanks>: value" line of a /proc file. */
static void proc_field(const char *path, const char *key, char *out, size_t size) {
  snprintf(out, size, "unknown");
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  char line[512];
  size_t len = strlen(key);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, len) != 0 || strchr(" \t:", line[len]) == NULL)
      continue;
    char *colon = strchr(line, ':');
    if (colon == NULL)
      continue;
    colon++;
    colon += strspn(colon, " \t");
    trim(colon);
    snprintf(out, size, "%s", colon);
    break;
  }
  fclose(f);
}

void selected_choice(const char *line, char *out, size_t size) {
  const char *open = strchr(line, '['), *close = open ? strchr(open, ']') : NULL;
  if (open && close)
    snprintf(out, size, "%.*s", (int)(close - open - 1), open + 1);
  else
    snprintf(out, size, "%s", line);
  trim(out);
}

/* MemTotal in GiB. */
static void read_memory(char *out, size_t size) {
  char kb[64];
  proc_field("/proc/meminfo", "MemTotal", kb, sizeof kb);
  double total = strtod(kb, NULL);
  if (total > 0)
    snprintf(out, size, "%.1f GiB", total / (1024 * 1024));
  else
    snprintf(out, size, "%.20s", kb);
}

static void read_thp(char *out, size_t size) {
  char line[128] = "";
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (f == NULL || fgets(line, sizeof line, f) == NULL)
    snprintf(line, sizeof line, "unknown");
  if (f)
    fclose(f);
  selected_choice(line, out, size);
}

static void package_version(const char *package, char *out, size_t size) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "dpkg-query -W -f='${Version}' %s 2>/dev/null", package);
  snprintf(out, size, "unknown (no dpkg-query)");
  FILE *p = popen(cmd, "r");
  if (p == NULL)
    return;
  char line[64] = "";
  if (fgets(line, sizeof line, p) != NULL && line[0]) {
    trim(line);
    snprintf(out, size, "%s", line);
  } else {
    snprintf(out, size, "not installed");
  }
  pclose(p);
}

void machine_collect(struct machine_info *m, const char *hakmem_version) {
  memset(m, 0, sizeof *m);
  proc_field("/proc/cpuinfo", "model name", m->cpu, sizeof m->cpu);
  read_memory(m->memory, sizeof m->memory);
  m->cores = sysconf(_SC_NPROCESSORS_ONLN);
  struct utsname u;
  if (uname(&u) == 0)
    snprintf(m->kernel, sizeof m->kernel, "%.40s %.80s", u.sysname, u.release);
  read_thp(m->thp, sizeof m->thp);
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(m->date, sizeof m->date, "%Y-%m-%d %H:%M UTC", &tm);
  snprintf(m->hakmem_version, sizeof m->hakmem_version, "%s", hakmem_version);
  for (size_t i = 0; i < sizeof packages / sizeof packages[0]; i++) {
    struct package_version *p = &m->packages[m->npackages++];
    snprintf(p->what, sizeof p->what, "%s", packages[i].what);
    snprintf(p->package, sizeof p->package, "%s", packages[i].package);
    package_version(p->package, p->version, sizeof p->version);
  }
}
