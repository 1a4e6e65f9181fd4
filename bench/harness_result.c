/* harness_result.c: parsing a workload's result line and hakmem's
 * statistics report (see harness_result.h). */
#include "harness_result.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 48
#define MAX_LINE 1024

/* Split a copy of line (at most MAX_LINE bytes) on blanks. */
static int tokenize(const char *line, size_t len, char *buf, char **tokens) {
  if (len >= MAX_LINE)
    len = MAX_LINE - 1;
  memcpy(buf, line, len);
  buf[len] = '\0';
  int n = 0;
  for (char *save = NULL, *t = strtok_r(buf, " \t\r", &save); t && n < MAX_TOKENS;
       t = strtok_r(NULL, " \t\r", &save))
    tokens[n++] = t;
  return n;
}

static int parse_number(const char *text, double *out) {
  char *end;
  double v = strtod(text, &end);
  if (end == text || (*end != '\0' && *end != ','))
    return -1;
  *out = v;
  return 0;
}

static void copy_text(char *dst, size_t size, const char *src) {
  snprintf(dst, size, "%s", src);
}

/* ---- the result line ---- */

static void result_key(struct run_result *r, const char *key, const char *val, unsigned *seen) {
  double v = 0;
  int numeric = parse_number(val, &v) == 0;
  if (strcmp(key, "workload") == 0)
    copy_text(r->workload, sizeof r->workload, val), *seen |= 1;
  else if (strcmp(key, "metric") == 0)
    copy_text(r->metric, sizeof r->metric, val), *seen |= 2;
  else if (strcmp(key, "value") == 0 && numeric)
    r->value = v, *seen |= 4;
  else if (strcmp(key, "better") == 0)
    r->higher_is_better = strcmp(val, "lower") != 0;
  else if (strcmp(key, "allocator") == 0)
    copy_text(r->allocator, sizeof r->allocator, val);
  else if (!numeric)
    return;
  else if (strcmp(key, "pages") == 0)
    r->pages = v;
  else if (strcmp(key, "wall_s") == 0)
    r->wall_s = v;
  else if (strcmp(key, "utime_s") == 0)
    r->utime_s = v;
  else if (strcmp(key, "stime_s") == 0)
    r->stime_s = v;
  else if (strcmp(key, "minflt") == 0)
    r->minflt = (uint64_t)v;
  else if (strcmp(key, "majflt") == 0)
    r->majflt = (uint64_t)v;
  else if (strcmp(key, "maxrss_kb") == 0)
    r->maxrss_kb = (uint64_t)v;
}

static int parse_result_tokens(char **tokens, int n, struct run_result *out) {
  if (n < 1 || strcmp(tokens[0], "result") != 0)
    return -1;
  struct run_result r = {.higher_is_better = true};
  unsigned seen = 0;
  for (int i = 1; i < n; i++) {
    char *eq = strchr(tokens[i], '=');
    if (eq == NULL)
      continue;
    *eq = '\0';
    result_key(&r, tokens[i], eq + 1, &seen);
  }
  if (seen != 7)
    return -1;
  *out = r;
  return 0;
}

int result_parse_line(const char *line, struct run_result *out) {
  char buf[MAX_LINE], *tokens[MAX_TOKENS];
  size_t len = strcspn(line, "\n");
  return parse_result_tokens(tokens, tokenize(line, len, buf, tokens), out);
}

int result_parse_output(const char *text, struct run_result *out) {
  int found = -1;
  for (const char *line = text; line && *line;) {
    const char *next = strchr(line, '\n');
    struct run_result r;
    if (strncmp(line, "result ", 7) == 0 && result_parse_line(line, &r) == 0) {
      *out = r;
      found = 0;
    }
    line = next ? next + 1 : NULL;
  }
  return found;
}

/* ---- the statistics report ---- */

static const char *const path_names[] = {
#define PATH_NAME(NAME, name, text) #name,
    HAKMEM_SUPPLY_PATHS(PATH_NAME)
#undef PATH_NAME
};

static const struct {
  const char *name;
  size_t offset;
} counters[] = {
#define COUNTER(name, text) {#name, offsetof(struct hakmem_stats, name)},
    HAKMEM_STATS_ALL_COUNTERS(COUNTER)
#undef COUNTER
};

const char *ledger_path_name(int p) {
  return p >= 0 && p < HAKMEM_SUPPLY_COUNT ? path_names[p] : "?";
}

static int path_index(const char *name) {
  for (int p = 0; p < HAKMEM_SUPPLY_COUNT; p++)
    if (strcmp(path_names[p], name) == 0)
      return p;
  return -1;
}

static uint64_t *counter_slot(struct hakmem_stats *s, const char *name, size_t len) {
  for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
    if (strlen(counters[i].name) == len && strncmp(counters[i].name, name, len) == 0)
      return (uint64_t *)((char *)s + counters[i].offset);
  return NULL;
}

/* ns per unit of a wait column named like "wait_ms"; 0 if not a wait name. */
static double wait_unit_ns(const char *name) {
  if (strncmp(name, "wait", 4) != 0)
    return 0;
  if (strstr(name, "ns"))
    return 1;
  if (strstr(name, "us"))
    return 1e3;
  if (strstr(name, "ms"))
    return 1e6;
  return 0;
}

/* A supply row: "<path> 12 3 0.456 ..." or "<path> pages=12 events=3 wait_ns=456". */
static void parse_supply_row(struct hakmem_supply_row *row, char **tokens, int n, double unit_ns) {
  double column[3] = {0, 0, 0};
  int ncol = 0;
  for (int i = 0; i < n; i++) {
    char *eq = strchr(tokens[i], '=');
    double v;
    if (eq == NULL) {
      if (ncol < 3 && parse_number(tokens[i], &v) == 0)
        column[ncol++] = v;
      continue;
    }
    *eq = '\0';
    if (parse_number(eq + 1, &v) != 0)
      continue;
    if (strcmp(tokens[i], "pages") == 0)
      row->pages = (uint64_t)v;
    else if (strcmp(tokens[i], "events") == 0)
      row->events = (uint64_t)v;
    else if (wait_unit_ns(tokens[i]) > 0)
      row->wait_ns = (uint64_t)(v * wait_unit_ns(tokens[i]) + 0.5);
  }
  if (ncol > 0)
    row->pages = (uint64_t)column[0];
  if (ncol > 1)
    row->events = (uint64_t)column[1];
  if (ncol > 2)
    row->wait_ns = (uint64_t)(column[2] * unit_ns + 0.5);
}

/* "name value", "name: value" or "name=value ..." counters on one line. */
static bool parse_counters(struct hakmem_stats *s, char **tokens, int n) {
  double v;
  if (n >= 2 && strchr(tokens[0], '=') == NULL) {
    uint64_t *slot = counter_slot(s, tokens[0], strcspn(tokens[0], ":"));
    if (slot && parse_number(tokens[1], &v) == 0) {
      *slot = (uint64_t)v;
      return true;
    }
  }
  bool any = false;
  for (int i = 0; i < n; i++) {
    char *eq = strchr(tokens[i], '=');
    uint64_t *slot = eq ? counter_slot(s, tokens[i], (size_t)(eq - tokens[i])) : NULL;
    if (slot && parse_number(eq + 1, &v) == 0) {
      *slot = (uint64_t)v;
      any = true;
    }
  }
  return any;
}

/* The header: "hakmem <version>: statistics ..." */
static bool parse_header(struct ledger *l, char **tokens, int n) {
  if (n < 3 || strcmp(tokens[0], "hakmem") != 0 || strcmp(tokens[2], "statistics") != 0)
    return false;
  copy_text(l->version, sizeof l->version, tokens[1]);
  l->version[strcspn(l->version, ":")] = '\0';
  return true;
}

static void parse_ledger_line(struct ledger *l, char **tokens, int n, double *unit_ns) {
  if (parse_header(l, tokens, n)) {
    l->present = true;
    return;
  }
  if (n > 0 && (strcmp(tokens[0], "hakmem:") == 0 || strcmp(tokens[0], "hakmem") == 0))
    tokens++, n--; /* the prefix of every report line */
  for (int i = 0; i < n; i++)
    if (wait_unit_ns(tokens[i]) > 0 && strchr(tokens[i], '=') == NULL)
      *unit_ns = wait_unit_ns(tokens[i]), l->present = true;
  int first = n > 0 && strcmp(tokens[0], "supply") == 0;
  if (n > first) {
    char *name = tokens[first];
    if (strncmp(name, "path=", 5) == 0)
      name += 5;
    int p = path_index(name);
    if (p >= 0) {
      parse_supply_row(&l->stats.supply[p], tokens + first + 1, n - first - 1, *unit_ns);
      l->present = true;
      return;
    }
  }
  if (parse_counters(&l->stats, tokens, n))
    l->present = true;
}

void ledger_parse(const char *text, struct ledger *out) {
  memset(out, 0, sizeof *out);
  double unit_ns = 1e6;
  for (const char *line = text; line && *line;) {
    const char *next = strchr(line, '\n');
    size_t len = next ? (size_t)(next - line) : strlen(line);
    char buf[MAX_LINE], *tokens[MAX_TOKENS];
    int n = tokenize(line, len, buf, tokens);
    if (n > 0 && strcmp(tokens[0], "result") != 0)
      parse_ledger_line(out, tokens, n, &unit_ns);
    line = next ? next + 1 : NULL;
  }
}

uint64_t ledger_total_pages(const struct ledger *l) {
  uint64_t total = 0;
  for (int p = 0; p < HAKMEM_SUPPLY_COUNT; p++)
    total += l->stats.supply[p].pages;
  return total;
}

uint64_t ledger_total_wait_ns(const struct ledger *l) {
  uint64_t total = 0;
  for (int p = 0; p < HAKMEM_SUPPLY_COUNT; p++)
    total += l->stats.supply[p].wait_ns;
  return total;
}
