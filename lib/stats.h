/* stats.h: counters and the page-supply ledger.
 *
 * Counters are updated on slow paths only (refill, flush, carving, kernel
 * calls), with relaxed atomics; the malloc/free fast paths count nothing.
 * The names are those of HAKMEM_STATS_COUNTERS in hakmem.h. */
#ifndef HAKMEM_STATS_H
#define HAKMEM_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "hakmem.h"

enum stat_id {
#define STAT_ENUM(name, text) STAT_##name,
  HAKMEM_STATS_ALL_COUNTERS(STAT_ENUM)
#undef STAT_ENUM
  STAT_COUNT
};

void stats_add(enum stat_id id, int64_t delta);
void stats_set(enum stat_id id, uint64_t value);

/* Record pages that reached the program by `path`: how many, through how
 * many calls or faults, and the time the program's threads waited (0 when
 * it could not be measured). */
void stats_supply(enum hakmem_supply_path path, uint64_t pages, uint64_t events, uint64_t wait_ns);

/* One faulting thread's wait, from the fault message to its wake-up. */
void stats_fault_wait(uint64_t wait_ns);

/* The at-exit report, when HAKMEM_STATS=1. */
void stats_install_exit_report(void);

#endif /* HAKMEM_STATS_H */
