/* options.c: HAKMEM_* read once from the environment. */
#include "options.h"

#include <stdio.h>
#include <stdlib.h>

#include "diag.h"
#include "types.h"

struct hakmem_options hakmem_options = {
#define OPTION_DEFAULT(NAME, field, def, lo, hi, text) .field = def,
  HAKMEM_OPTIONS(OPTION_DEFAULT)
#undef OPTION_DEFAULT
};

/* True when the variable is set to a number (clamped into [lo, hi]). */
static bool option_read(const char *name, int64_t *value, int64_t lo, int64_t hi) {
  const char *s = getenv(name);
  if (!s || !*s) return false;
  char *end;
  long long v = strtoll(s, &end, 0);
  if (*end != 0) {
    char line[160];
    snprintf(line, sizeof line, "hakmem: ignoring %s=%s (not a number)\n", name, s);
    diag_write(2, line);
    return false;
  }
  if (v < lo || v > hi) {
    char line[160];
    snprintf(line, sizeof line, "hakmem: %s=%lld out of [%lld, %lld], clamped\n", name, v,
             (long long)lo, (long long)hi);
    diag_write(2, line);
    v = v < lo ? lo : hi;
  }
  *value = v;
  return true;
}

bool options_init(void) {
  extern char **environ;
  if (environ == NULL) return false; /* too early: libc has not set it up */
#define OPTION_READ(NAME, field, def, lo, hi, text)                    \
  if (option_read("HAKMEM_" #NAME, &hakmem_options.field, lo, hi)) \
    hakmem_options.given |= (uint32_t)1 << OPTION_##NAME;
  HAKMEM_OPTIONS(OPTION_READ)
#undef OPTION_READ
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
