/* rss.h: the resident set size, for the tests of memory going back,
 * shared by helpers.h and test_pager_helpers.h. */
#ifndef HAKMEM_TESTS_RSS_H
#define HAKMEM_TESTS_RSS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Resident set size in bytes, from /proc/self/statm (second field, pages).
 * Read with read(2), not stdio, so that measuring allocates nothing. */
static inline size_t rss_bytes(void)
{
  char buf[256];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  cr_assert(fd >= 0, "open /proc/self/statm: %s", strerror(errno));
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  cr_assert(n > 0, "read /proc/self/statm");
  buf[n] = '\0';
  unsigned long size = 0, resident = 0;
  cr_assert(sscanf(buf, "%lu %lu", &size, &resident) == 2, "parse statm: %s", buf);
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

#endif /* HAKMEM_TESTS_RSS_H */
