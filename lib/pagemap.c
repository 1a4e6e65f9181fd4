/* pagemap.c: reading /proc/self/pagemap (pagemap.h). */
#include "pagemap.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "types.h"

static atomic_bool pagemap_disabled;

int pagemap_open(void) {
  if (atomic_load_explicit(&pagemap_disabled, memory_order_relaxed)) return -1;
  long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  return fd < 0 ? -1 : (int)fd;
}

void pagemap_close(int fd) { syscall(SYS_close, fd); }

size_t pagemap_read(int fd, uintptr_t addr, uint64_t *entries, size_t n) {
  off_t off = (off_t)(addr / PAGE_SIZE * sizeof *entries);
  long got = syscall(SYS_pread64, fd, entries, n * sizeof *entries, off);
  return got > 0 ? (size_t)got / sizeof *entries : 0;
}

void pagemap_test_disable(bool disable) { atomic_store(&pagemap_disabled, disable); }
