/* Description: the README's options table is lib/options.h's list: every
 * option appears there once, with its default and range, and nothing else
 * does. Values are read as documented: blanks around a number are allowed,
 * anything else that is not a number is ignored with a message, a number
 * out of range (however large) is clamped with a message naming what was
 * typed, and a pager chunk between two powers of two is rounded down, so
 * that HAKMEM_VERBOSE prints what is in force. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* options_init() with one variable set; what it wrote to stderr in out. */
static void read_with(const char *name, const char *value, char *out, size_t size) {
  char path[] = "/tmp/hakmem-options-XXXXXX";
  int fd = mkstemp(path), saved = dup(2);
  cr_assert(fd >= 0 && saved >= 0);
  unlink(path);
  setenv(name, value, 1);
  dup2(fd, 2);
  cr_assert(options_init());
  dup2(saved, 2);
  close(saved);
  unsetenv(name);
  ssize_t n = pread(fd, out, size - 1, 0);
  out[n > 0 ? n : 0] = 0;
  close(fd);
}

/* Read name=value: the option's field must then hold `want`, and stderr
 * say `said` (NULL: nothing). */
static void expect_read(const char *name, const char *value, const int64_t *field, int64_t want, const char *said) {
  char msg[256];
  read_with(name, value, msg, sizeof msg);
  cr_assert_eq(*field, want, "%s=\"%s\" read as %lld, not %lld", name, value, (long long)*field, (long long)want);
  if (said) cr_assert(strstr(msg, said), "%s", msg);
  else cr_assert_str_empty(msg);
}

Test(options, blanks_around_a_number_are_allowed) {
  expect_read("HAKMEM_LRU_MAX", " 7 ", &hakmem_options.lru_max, 7, NULL);
}

Test(options, what_is_not_a_number_is_ignored_with_a_message) {
  expect_read("HAKMEM_LRU_MAX", "abc", &hakmem_options.lru_max, 256, "ignoring HAKMEM_LRU_MAX=abc (not a number)");
  expect_read("HAKMEM_LRU_MAX", "  ", &hakmem_options.lru_max, 256, "ignoring HAKMEM_LRU_MAX=   (not a number)");
  cr_assert_not(option_given(OPTION_LRU_MAX));
}

Test(options, a_number_out_of_range_is_clamped_naming_what_was_typed) {
  expect_read("HAKMEM_LRU_MAX", "99999999999999999999999", &hakmem_options.lru_max, 4096,
              "HAKMEM_LRU_MAX=99999999999999999999999 out of [0, 4096], clamped to 4096");
  expect_read("HAKMEM_SS_LAZY_ZERO", "-5", &hakmem_options.ss_lazy_zero, 0, "clamped to 0");
}

Test(options, a_pager_chunk_is_rounded_down_to_a_power_of_two) {
  expect_read("HAKMEM_PAGER_CHUNK_KB", "1000", &hakmem_options.pager_chunk_kb, 512,
              "HAKMEM_PAGER_CHUNK_KB=1000 rounded down to 512");
  expect_read("HAKMEM_PAGER_CHUNK_KB", "64", &hakmem_options.pager_chunk_kb, 64, NULL);
}
