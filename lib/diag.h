/* diag.h: detecting bad frees, and reporting them.
 *
 * A free block carries a cookie in its second word: its address mixed with
 * a per-process secret. free() finding the cookie already there is a
 * double free; malloc clears it when it hands the block out. The other
 * checks (the region map, the slab's bounds, the block grid) catch
 * pointers hakmem never returned. A detected error prints one line to
 * stderr, "hakmem: <problem> <address>", and aborts. */
#ifndef HAKMEM_DIAG_H
#define HAKMEM_DIAG_H

#include <stdint.h>

#include "hot.h"
#include "types.h"

static inline uintptr_t diag_cookie(const void *block) {
  return (uintptr_t)block ^ hk_hot.diag_secret;
}

void diag_init(void);

/* Print "hakmem: <what> <ptr> [(<detail>)]" and abort(). */
__attribute__((noreturn, cold)) void diag_fatal(const char *what, const void *ptr, const char *detail);

/* A block already freed, passed to op: free's is "free(): double free",
 * the others' op with "(block already freed)". */
__attribute__((noreturn, cold)) void diag_fatal_freed(const char *op, const void *ptr);

/* Write a message to stderr without allocating. */
void diag_write(int fd, const char *s);
/* Format v into buf (hex, with 0x, for base 16); returns buf. Needs 19
 * bytes for base 16, 21 for base 10. */
char *diag_format_u64(char *buf, uint64_t v, unsigned base);

#endif /* HAKMEM_DIAG_H */
