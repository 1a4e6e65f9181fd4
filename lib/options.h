/* options.h: the HAKMEM_* environment options, read once at start-up.
 *
 * One list: each option's name, default, bounds and description. The
 * environment variable is HAKMEM_<NAME>; HAKMEM_VERBOSE=1 prints them all
 * at start-up, and the README's table is this list. Values out of bounds
 * are clamped and reported on stderr. */
#ifndef HAKMEM_OPTIONS_H
#define HAKMEM_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

/* X(NAME, field, default, min, max, description) */
#define HAKMEM_OPTIONS(X)                                                                  \
  X(SS_LAZY_ZERO, ss_lazy_zero, 1, 0, 3,                                                  \
    "pages of an empty SuperSlab entering the LRU: 0 keep, 1 MADV_DONTNEED, "              \
    "2 MADV_FREE, 3 to the pager's pool (1 when no pager runs; unset: 3 while it runs)")   \
  X(LRU_MAX, lru_max, 256, 0, 4096,                                                       \
    "most empty SuperSlabs and huge blocks kept resident for reuse (4 times as many once released)") \
  X(LRU_MAX_MB, lru_max_mb, 512, 0, 1 << 20,                                               \
    "most MiB kept resident in the LRU cache (4 times as many once released)")             \
  X(LRU_AGE_MS, lru_age_ms, 2000, 1, 3600000, "age after which a cached region is unmapped") \
  X(HUGE_THP, huge_thp, 0, 0, 2,                                                           \
    "new regions that ask for transparent huge pages (MADV_HUGEPAGE): 0 none, "            \
    "1 huge blocks', 2 SuperSlabs' too")                                                   \
  X(STATS, stats, 0, 0, 1, "print statistics and the page-supply ledger to stderr at exit") \
  X(VERBOSE, verbose, 0, 0, 1, "print the options in force at start-up")                   \
  X(UFFD, uffd, 0, 0, 1, "start the userfaultfd pager at load (--enable-uffd builds)")     \
  X(PAGER_CHUNK_KB, pager_chunk_kb, 2048, 4, 2048,                                         \
    "pager: KiB moved into a SuperSlab per fault or direct supply, a power of two")         \
  X(PAGER_DIRECT, pager_direct, 1, 0, 1,                                                   \
    "pager: 1 moves pages into a fresh slab on the allocating thread, no fault")           \
  X(PAGER_POOL_MB, pager_pool_mb, 64, 1, 65536, "pager: most MiB of pre-zeroed pages kept")

enum hakmem_option_index {
#define OPTION_INDEX(NAME, field, def, lo, hi, text) OPTION_##NAME,
  HAKMEM_OPTIONS(OPTION_INDEX)
#undef OPTION_INDEX
};

struct hakmem_options {
#define OPTION_FIELD(NAME, field, def, lo, hi, text) int64_t field;
  HAKMEM_OPTIONS(OPTION_FIELD)
#undef OPTION_FIELD
  uint32_t given; /* bit OPTION_<NAME>: set in the environment */
};

/* Read once by options_init(); read-only afterwards. */
extern struct hakmem_options hakmem_options;

static inline bool option_given(enum hakmem_option_index i) { return (hakmem_options.given >> i) & 1; }

/* Set an option as the environment would have (the tests). */
#define OPTION_SET(NAME, field, value) \
  (hakmem_options.field = (value), hakmem_options.given |= (uint32_t)1 << OPTION_##NAME)

/* Read the environment; false when it is not set up yet (a malloc from
 * the dynamic loader before libc's own start-up), to be read again. */
bool options_init(void);
void options_print(int fd);

#endif /* HAKMEM_OPTIONS_H */
