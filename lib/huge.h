/* huge.h: blocks above LARGE_MAX (or shrunk in place by realloc from
 * above it: api.c), each in a 2 MiB-aligned region of its
 * own with a header in its first bytes; the user block starts at 128 bytes
 * (or at the requested alignment). Freed ones go to the LRU for reuse. */
#ifndef HAKMEM_HUGE_H
#define HAKMEM_HUGE_H

#include <stdbool.h>
#include <stddef.h>

#include "types.h"

void *huge_alloc(size_t size, size_t align, bool zero);
void huge_free(void *p);
size_t huge_usable(const void *p, const char *op);

/* Resize, moving the mapping (mremap) when it cannot grow in place. NULL
 * with errno ENOMEM when it cannot; p is then intact. */
void *huge_realloc(void *p, size_t size);

#endif /* HAKMEM_HUGE_H */
