/* options.c: HAKMEM_* read once from the environment. */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "diag.h"
#include "types.h"

struct hakmem_options hakmem_options = {
#define OPTION_DEFAULT(NAME, field, def, lo, hi, text) .field = def,
  HAKMEM_OPTIONS(OPTION_DEFAULT)
#undef OPTION_DEFAULT
};

/* True when the variable is set to a number (clamped into [lo, hi]);
 * blanks around it are allowed, as strtoll allows them before. */
static bool option_read(const char *name, int64_t *value, int64_t lo, int64_t hi) {
  const char *s = getenv(name);
  if (!s || !*s) return false;
  char *end, line[200];
  errno = 0;
  long long v = strtoll(s, &end, 10); /* "0100" is 100, not octal */
  bool digits = end != s;              /* strtoll took a number, not blanks only */
  while (isspace((unsigned char)*end)) end++;
  if (*end != 0 || !digits) {
    snprintf(line, sizeof line, "hakmem: ignoring %s=%s (not a number)\n", name, s);
    diag_write(2, line);
    return false;
  }
  if (errno == ERANGE || v < lo || v > hi) {
    snprintf(line, sizeof line, "hakmem: %s=%s out of [%lld, %lld], clamped to %lld\n", name, s,
             (long long)lo, (long long)hi, (long long)(v < lo ? lo : hi));
    diag_write(2, line);
    v = v < lo ? lo : hi;
  }
  *value = v;
  return true;
}

/* The pager moves chunks of a power of two: a value between two is
 * rounded down, and says so, so that what HAKMEM_VERBOSE prints is what
 * is in force. */
static void options_round_chunk(void) {
  int64_t kb = hakmem_options.pager_chunk_kb, p2 = 1;
  while (p2 * 2 <= kb) p2 *= 2;
  if (p2 == kb) return;
  char line[160];
  snprintf(line, sizeof line, "hakmem: HAKMEM_PAGER_CHUNK_KB=%lld rounded down to %lld, a power of two\n",
           (long long)kb, (long long)p2);
  diag_write(2, line);
  hakmem_options.pager_chunk_kb = p2;
}

bool options_init(void) {
  extern char **environ;
  if (environ == NULL) return false; /* too early: libc has not set it up */
#define OPTION_READ(NAME, field, def, lo, hi, text)                    \
  if (option_read("HAKMEM_" #NAME, &hakmem_options.field, lo, hi)) \
    hakmem_options.given |= (uint32_t)1 << OPTION_##NAME;
  HAKMEM_OPTIONS(OPTION_READ)
#undef OPTION_READ
  options_round_chunk();
  return true;
}

void options_print(int fd) {
  char line[256];
#define OPTION_PRINT(NAME, field, def, lo, hi, text)                                   \
  snprintf(line, sizeof line, "hakmem: HAKMEM_%-16s = %-8lld (default %lld) %s\n", #NAME, \
           (long long)hakmem_options.field, (long long)(def), text);                   \
  diag_write(fd, line);
  HAKMEM_OPTIONS(OPTION_PRINT)
#undef OPTION_PRINT
}
