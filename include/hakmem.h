/* hakmem.h: the public interface of libhakmem.
 *
 * hakmem replaces the whole malloc family (malloc, free, calloc, realloc,
 * reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * malloc_usable_size, malloc_trim, free_sized, free_aligned_sized, and
 * glibc's mallinfo2, mallinfo, malloc_info, malloc_stats and mallopt,
 * which describe hakmem's heap): link with -lhakmem or run a program
 * with LD_PRELOAD=libhakmem.so. This header adds what is hakmem's own:
 * statistics with the page-supply ledger, trimming and the pager. */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_VERSION_STRING "0.1.0"

/* The paths by which a page reaches the program. Every page hakmem hands
 * out is counted under exactly one of them, with the time the program's
 * threads spent waiting for it where hakmem can measure that. */
#define HAKMEM_SUPPLY_PATHS(X)                                                    \
  X(FRESH,       fresh,       "first touch of fresh kernel memory")              \
  X(REFAULT,     refault,     "refault after lazy zeroing (MADV_DONTNEED)")      \
  X(LAZYFREE,    lazyfree,    "reuse after MADV_FREE")                           \
  X(REUSE,       reuse,       "reuse of resident pages, no fault")               \
  X(UFFD_MOVE,   uffd_move,   "pager: UFFDIO_MOVE on a fault")                   \
  X(DIRECT,      direct,      "pager: direct supply, no fault")                  \
  X(UFFD_COPY,   uffd_copy,   "pager: UFFDIO_COPY, the pool dry or no MOVE")     \
  X(UFFD_ZERO,   uffd_zero,   "pager: UFFDIO_ZEROPAGE, read faults or no memory")

enum hakmem_supply_path {
#define HAKMEM_SUPPLY_ENUM(NAME, name, text) HAKMEM_SUPPLY_##NAME,
  HAKMEM_SUPPLY_PATHS(HAKMEM_SUPPLY_ENUM)
#undef HAKMEM_SUPPLY_ENUM
  HAKMEM_SUPPLY_COUNT
};

/* One row of the page-supply ledger. */
struct hakmem_supply_row {
  uint64_t pages;    /* pages that reached the program by this path */
  uint64_t events;   /* system calls, faults or moves that supplied them */
  uint64_t wait_ns;  /* time the program's threads spent on them; 0 = not measurable */
};

/* Buckets of the faulting thread's wait, from fault message to wake:
 * bucket i counts waits from 2^(i+7) up to 2^(i+8) ns (bucket 0 all waits
 * below 256 ns), the last bucket every wait of 2^22 ns (4.2 ms) or more. */
#define HAKMEM_WAIT_BUCKETS 16

/* Scalar counters: name, description. */
#define HAKMEM_STATS_COUNTERS(X)                                                  \
  X(ss_live,           "SuperSlabs in use")                                      \
  X(ss_cached,         "SuperSlabs in the LRU cache")                            \
  X(ss_mapped_total,   "SuperSlabs mapped since start, or made of a huge block's region") \
  X(ss_unmapped_total, "SuperSlabs returned to the kernel, or made a huge block's region") \
  X(ss_reused_total,   "SuperSlabs taken from the LRU cache")                    \
  X(huge_live,         "huge blocks in use")                                     \
  X(bytes_in_use,      "bytes in blocks handed out, thread caches included")    \
  X(bytes_mapped,      "bytes mapped from the kernel")                           \
  X(slabs_carved,      "slabs carved")                                           \
  X(remote_frees,      "frees from other threads, taken back by the owner")               \
  X(mmap_calls,        "mmap calls")                                             \
  X(mmap_ns,           "time in mmap")                                           \
  X(munmap_calls,      "munmap calls")                                           \
  X(munmap_ns,         "time in munmap")                                         \
  X(madvise_calls,     "madvise calls")                                          \
  X(madvise_ns,        "time in madvise")                                        \
  X(pages_released,    "pages returned to the kernel (madvise, munmap, mremap)") \
  X(minor_faults,      "minor page faults of the process (getrusage)")           \
  X(pager_faults,      "faults served by the pager")                             \
  X(pager_zero_pages,  "pages zeroed in the background by the pager")            \
  X(pager_zero_ns,     "time the pager spent zeroing")                           \
  X(pager_recycled,    "pages recycled into the pager's pool")                   \
  X(pager_returned,    "pages the pager returned to the kernel")                 \
  X(pager_pool_pages,  "pages in the pager's pool now")

/* Counters added in version 2: after the ledger and the histogram, so
 * that version 1's fields keep their places. */
#define HAKMEM_STATS_COUNTERS_V2(X)                                               \
  X(pager_refill_pages, "fresh pages cleared by the kernel into the pager's pool") \
  X(pager_refill_ns,    "time the pager spent filling its pool with them")

#define HAKMEM_STATS_ALL_COUNTERS(X) HAKMEM_STATS_COUNTERS(X) HAKMEM_STATS_COUNTERS_V2(X)

struct hakmem_stats {
  uint32_t version; /* HAKMEM_STATS_VERSION of the library that filled it */
  uint32_t size;    /* sizeof(struct hakmem_stats) of the library that filled it */
#define HAKMEM_STATS_FIELD(name, text) uint64_t name;
  HAKMEM_STATS_COUNTERS(HAKMEM_STATS_FIELD)
  struct hakmem_supply_row supply[HAKMEM_SUPPLY_COUNT];
  uint64_t fault_wait_hist[HAKMEM_WAIT_BUCKETS];
  HAKMEM_STATS_COUNTERS_V2(HAKMEM_STATS_FIELD)
#undef HAKMEM_STATS_FIELD
};

#define HAKMEM_STATS_VERSION 2

/* Fill the first `size` bytes at out with a snapshot of the counters.
 * Counters that other threads update concurrently are read without
 * stopping them. A program built with an older, smaller struct gets its
 * part of it; a newer, larger one gets zeros past the library's (out->size
 * says how much the library filled). Returns 0, or -1 with errno EINVAL
 * when size cannot hold `version` and `size`. */
int hakmem_stats_get_sized(struct hakmem_stats *out, size_t size);

/* The same for a struct of the caller's header: the macro passes its size.
 * The plain function, which callers through dlsym reach, cannot know it:
 * it fills version 1's part (up to fault_wait_hist); they should call
 * hakmem_stats_get_sized. */
int hakmem_stats_get(struct hakmem_stats *out);
#define hakmem_stats_get(out) hakmem_stats_get_sized((out), sizeof *(out))

/* Write the human-readable report (counters and ledger) to fd. */
void hakmem_stats_print(int fd);

/* Return cached and empty memory to the kernel now (malloc_trim(0) does
 * the same). Returns the number of bytes released. */
size_t hakmem_trim(void);

/* The userfaultfd pager (./configure --enable-uffd). Start returns 0, or
 * -1 with errno set (ENOSYS when built without the pager or on a kernel
 * without userfaultfd, io_uring or MADV_WIPEONFORK, EPERM when no full
 * userfaultfd or no io_uring may be had, EPROTO when the kernel refuses its API handshake, EMFILE,
 * ENFILE or ENOMEM when the process is out of descriptors or memory, EIO
 * when the pager thread failed as it started); the default fault path
 * then serves. */
int hakmem_pager_start(void);
void hakmem_pager_stop(void);
int hakmem_pager_active(void);

const char *hakmem_version(void);

#ifdef __cplusplus
}
#endif
#endif /* HAKMEM_H */
