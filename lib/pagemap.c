/* pagemap.c: reading /proc/self/pagemap (pagemap.h). */
#include "pagemap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os.h"
#include "types.h"

/* PAGEMAP_SCAN's ABI, from Linux 6.7's <linux/fs.h>, which older headers
 * (Debian 12's among them) lack. The kernel checks `size`. */
struct pagemap_scan_arg {
  uint64_t size;
  uint64_t flags;
  uint64_t start;
  uint64_t end;
  uint64_t walk_end; /* set by the kernel: where the walk stopped */
  uint64_t vec;
  uint64_t vec_len;
  uint64_t max_pages;
  uint64_t category_inverted;
  uint64_t category_mask;
  uint64_t category_anyof_mask;
  uint64_t return_mask;
};
_Static_assert(sizeof(struct pagemap_run) == 24, "struct page_region's layout");
#define PAGEMAP_SCAN_IOCTL _IOWR('f', 16, struct pagemap_scan_arg)

static atomic_bool pagemap_disabled;
static atomic_bool scan_missing;

int pagemap_open(void) {
  if (atomic_load_explicit(&pagemap_disabled, memory_order_relaxed)) return -1;
  return os_open_file("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}

void pagemap_close(int fd) { os_close_file(fd); }

size_t pagemap_read(int fd, uintptr_t addr, uint64_t *entries, size_t n) {
  off_t off = (off_t)(addr / PAGE_SIZE * sizeof *entries);
  long got = syscall(SYS_pread64, fd, entries, n * sizeof *entries, off);
  return got > 0 ? (size_t)got / sizeof *entries : 0;
}

long pagemap_scan(int fd, uintptr_t *from, uintptr_t end, uint64_t anyof, uint64_t report,
                  struct pagemap_run *runs, size_t n) {
  if (atomic_load_explicit(&scan_missing, memory_order_relaxed)) return -1;
  struct pagemap_scan_arg arg = {
      .size = sizeof arg,
      .start = *from,
      .end = end,
      .vec = (uintptr_t)runs,
      .vec_len = n,
      .category_anyof_mask = anyof,
      .return_mask = report,
  };
  long got = syscall(SYS_ioctl, fd, PAGEMAP_SCAN_IOCTL, &arg);
  if (got < 0) {
    /* ENOTTY before 6.7; EINVAL from a kernel that knows fewer categories. */
    if (errno == ENOTTY || errno == EINVAL) atomic_store_explicit(&scan_missing, true, memory_order_relaxed);
    return -1;
  }
  if (arg.walk_end <= *from) return -1; /* no progress: let the caller fall back */
  *from = arg.walk_end;
  return got;
}

void pagemap_test_disable(bool disable) { atomic_store(&pagemap_disabled, disable); }

void pagemap_test_disable_scan(bool disable) { atomic_store(&scan_missing, disable); }

int pagemap_is_huge_page(uintptr_t addr) {
  const uintptr_t huge = (uintptr_t)2 << 20;
  struct pagemap_run run;
  uintptr_t from = addr;
  int fd = pagemap_open();
  if (fd < 0) return -1;
  long n = pagemap_scan(fd, &from, addr + huge, PAGEMAP_CAT_PRESENT, PAGEMAP_CAT_HUGE, &run, 1);
  pagemap_close(fd);
  if (n < 0) return -1;
  return n == 1 && run.start == addr && run.end == addr + huge && (run.categories & PAGEMAP_CAT_HUGE);
}
