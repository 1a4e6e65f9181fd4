/* unnamed_file.h: a temporary file with no name, for output a test reads
 * back (a child's stderr, a report), shared by helpers.h and
 * test_pager_helpers.h. */
#ifndef HAKMEM_TESTS_UNNAMED_FILE_H
#define HAKMEM_TESTS_UNNAMED_FILE_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Open, and removed from /tmp at once: gone when its last descriptor is. */
static inline int unnamed_file(void)
{
  char path[] = "/tmp/hakmem-test-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
  unlink(path);
  return fd;
}

#endif /* HAKMEM_TESTS_UNNAMED_FILE_H */
