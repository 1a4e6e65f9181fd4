/* introspect.c: glibc's malloc introspection calls, answered by hakmem.
 *
 * Programs call mallinfo2(), malloc_stats(), malloc_info() and mallopt()
 * to report or tune the allocator. Under LD_PRELOAD, glibc's own versions
 * would describe glibc's heap, which holds nothing, so hakmem answers them
 * from its counters. glibc's fields map as follows:
 *   arena     bytes hakmem has mapped (SuperSlabs, large and huge blocks,
 *             cached regions); hblkhd is 0, so arena + hblkhd is the total
 *   uordblks  bytes in blocks handed out, less those the calling thread
 *             holds freed in its caches (other threads' caches count as
 *             handed out: their counts are theirs to change), so that a
 *             thread that frees all it allocated sees uordblks back where
 *             it was
 *   fordblks  arena - uordblks: mapped, not handed out
 *   hblks     huge blocks in use
 *   keepcost  bytes of empty SuperSlabs in the LRU cache, which
 *             malloc_trim(0) gives back
 * and the free-chunk counts (ordblks, smblks, fsmblks, usmblks) are 0:
 * hakmem has no chunks. mallopt() accepts glibc's parameters and changes
 * nothing (hakmem's options are its environment variables). */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>

#include "hakmem.h"
#include "heap.h"
#include "types.h"

static struct mallinfo2 mallinfo_of(const struct hakmem_stats *s) {
  struct mallinfo2 mi = { 0 };
  size_t cached = heap_cached_bytes_here();
  mi.arena = s->bytes_mapped;
  mi.uordblks = s->bytes_in_use > cached ? s->bytes_in_use - cached : 0;
  mi.fordblks = s->bytes_mapped > mi.uordblks ? s->bytes_mapped - mi.uordblks : 0;
  mi.hblks = s->huge_live;
  mi.keepcost = s->ss_cached * REGION_SIZE;
  return mi;
}

EXPORT struct mallinfo2 mallinfo2(void) {
  struct hakmem_stats s;
  hakmem_stats_get(&s);
  return mallinfo_of(&s);
}

static int clamp_int(size_t v) { return v > INT_MAX ? INT_MAX : (int)v; }

/* The old interface: int fields, which glibc lets wrap; these saturate. */
EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 mi2 = mallinfo2();
  struct mallinfo mi = { 0 };
  mi.arena = clamp_int(mi2.arena);
  mi.uordblks = clamp_int(mi2.uordblks);
  mi.fordblks = clamp_int(mi2.fordblks);
  mi.hblks = clamp_int(mi2.hblks);
  mi.keepcost = clamp_int(mi2.keepcost);
  return mi;
}

/* glibc prints its arenas to stderr; hakmem prints its report. */
EXPORT void malloc_stats(void) { hakmem_stats_print(2); }

/* glibc's format: one <malloc> element; options must be 0. */
EXPORT int malloc_info(int options, FILE *fp) {
  struct hakmem_stats s;
  struct mallinfo2 mi;

  if (options != 0) return EINVAL; /* as glibc: the code returned, errno untouched */
  hakmem_stats_get(&s);
  mi = mallinfo_of(&s);
  fprintf(fp,
          "<malloc version=\"hakmem-%s\">\n"
          "<total type=\"mapped\" size=\"%zu\"/>\n"
          "<total type=\"in-use\" size=\"%zu\"/>\n"
          "<total type=\"free\" size=\"%zu\"/>\n"
          "<total type=\"cached\" count=\"%llu\" size=\"%zu\"/>\n"
          "<total type=\"huge\" count=\"%zu\"/>\n"
          "<system type=\"current\" size=\"%zu\"/>\n"
          "</malloc>\n",
          hakmem_version(), mi.arena, mi.uordblks, mi.fordblks, (unsigned long long)s.ss_cached, mi.keepcost, mi.hblks,
          mi.arena);
  return 0;
}

/* Accepted (1) without effect, with glibc's answers: its only refusal
 * (0) is an M_MXFAST beyond its largest fastbin size, 80 * sizeof(size_t)
 * / 4; glibc also accepts parameters it does not know. */
EXPORT int mallopt(int param, int value) {
  if (param == M_MXFAST) return value >= 0 && (size_t)value <= 80 * sizeof(size_t) / 4;
  return 1;
}
