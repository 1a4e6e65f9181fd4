/* workers.c: waiting for the pager thread and its ring's workers to leave
 * (workers.h). */
#include "config.h"

#include "workers.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os.h"

/* The kernel's record of getdents64(2); opendir() would allocate. */
struct dirent_record {
  uint64_t ino;
  int64_t off;
  unsigned short reclen;
  unsigned char type;
  char name[];
};

static bool task_is_named(const char *tid, const char *want) {
  char path[64], comm[32];
  snprintf(path, sizeof path, "/proc/self/task/%s/comm", tid);
  int fd = os_open_file(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false; /* it has gone meanwhile */
  ssize_t n = read(fd, comm, sizeof comm - 1);
  os_close_file(fd);
  if (n <= 0) return false;
  comm[n] = 0;
  return strcmp(comm, want) == 0;
}

bool ring_workers_listed(pid_t owner) {
  char want[32];
  _Alignas(struct dirent_record) char buf[4096];
  snprintf(want, sizeof want, "iou-wrk-%d\n", (int)owner);
  int dir = os_open_file("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return false;
  bool found = false;
  long n;
  while (!found && (n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n && !found;) {
      const struct dirent_record *d = (const struct dirent_record *)(buf + off);
      off += d->reclen;
      found = d->name[0] >= '0' && d->name[0] <= '9' && task_is_named(d->name, want);
    }
  }
  os_close_file(dir);
  return found;
}

static bool thread_listed(pid_t tid) {
  char path[48];
  snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
  return access(path, F_OK) == 0;
}

void thread_and_ring_workers_wait_gone(pid_t owner) {
  for (int i = 0; i < 1000 && (thread_listed(owner) || ring_workers_listed(owner)); i++) usleep(1000);
}
