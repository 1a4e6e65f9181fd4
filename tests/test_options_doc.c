/* Description: the README's options table is lib/options.h's list: every
 * option appears there once, with its default and range, and nothing else
 * does. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

struct documented {
  char name[64];
  long long def, lo, hi;
};

static int read_table(struct documented *rows, int max) {
  const char *srcdir = getenv("HAKMEM_SRCDIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/README.md", srcdir ? srcdir : ".");
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "cannot open %s", path);
  char line[1024];
  int n = 0;
  while (fgets(line, sizeof line, f) && n < max) {
    struct documented *d = &rows[n];
    if (sscanf(line, "| `%63[A-Z_0-9]` | %lld | %lld..%lld |", d->name, &d->def, &d->lo, &d->hi) == 4) n++;
  }
  fclose(f);
  return n;
}

Test(options_doc, readme_table_matches_options_h) {
  struct documented rows[64];
  int n = read_table(rows, 64), listed = 0;
#define CHECK_OPTION(NAME, field, DEF, LO, HI, text)                                         \
  do {                                                                                       \
    listed++;                                                                                \
    int found = 0;                                                                           \
    for (int i = 0; i < n; i++) {                                                            \
      if (strcmp(rows[i].name, "HAKMEM_" #NAME) != 0) continue;                              \
      found++;                                                                               \
      cr_expect_eq(rows[i].def, (long long)(DEF), "HAKMEM_" #NAME ": README default %lld", rows[i].def); \
      cr_expect_eq(rows[i].lo, (long long)(LO), "HAKMEM_" #NAME ": README minimum %lld", rows[i].lo); \
      cr_expect_eq(rows[i].hi, (long long)(HI), "HAKMEM_" #NAME ": README maximum %lld", rows[i].hi); \
    }                                                                                        \
    cr_expect_eq(found, 1, "HAKMEM_" #NAME " is in the README's table %d times", found);     \
  } while (0);
  HAKMEM_OPTIONS(CHECK_OPTION)
#undef CHECK_OPTION
  cr_expect_eq(n, listed, "the README documents %d options, lib/options.h has %d", n, listed);
}
