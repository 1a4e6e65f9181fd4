/* uffd.c: opening a full userfaultfd, negotiating its API, registering
 * ranges and the range operations with their partial progress.
 *
 * Built bottom-up like the kernel's mm/userfaultfd.c: the open paths, the
 * API handshake, then one leaf per operation. Nothing here keeps state
 * beyond struct uffd, so every function may be called from any thread. */
#include "config.h"

#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define UFFD_FLAGS (O_CLOEXEC | O_NONBLOCK)

/* /dev/userfaultfd (Linux 6.1) hands out full userfaultfds to whoever may
 * open the device, whatever vm.unprivileged_userfaultfd says. The raw
 * openat: a wrapper of open() that allocates must not run while the pager
 * starts (os_open_file()). */
static int open_dev(void) {
  int dev, fd, err;

  dev = (int)syscall(SYS_openat, AT_FDCWD, "/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev < 0) {
    err = -errno;
    goto out;
  }
  fd = ioctl(dev, USERFAULTFD_IOC_NEW, UFFD_FLAGS);
  err = fd < 0 ? -errno : fd;
  close(dev);
out:
  return err;
}

/* The syscall without UFFD_USER_MODE_ONLY: EPERM unless the process has
 * CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1. We never retry with
 * UFFD_USER_MODE_ONLY: such a uffd makes read(2) into a registered range
 * fail with EFAULT instead of waiting for the pager. */
static int open_syscall(void) {
#ifdef SYS_userfaultfd
  long fd = syscall(SYS_userfaultfd, UFFD_FLAGS);
  return fd < 0 ? -errno : (int)fd;
#else
  return -ENOSYS;
#endif
}

static int open_full(bool *via_dev) {
  int fd;

  fd = open_dev();
  *via_dev = fd >= 0;
  if (fd >= 0) return fd;
  fd = open_syscall();
  if (fd >= 0 || fd == -ENOSYS) return fd;
  /* Out of descriptors or memory, it says so; any other refusal (ENOENT
   * or EACCES from the device, EPERM from the syscall) means no right. */
  if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM) return fd;
  return -EPERM;
}

/* UFFDIO_API may be called once per uffd, and asking for a feature the
 * kernel lacks fails: ask a throw-away uffd what is supported first. */
static int api_supported(uint64_t *features) {
  struct uffdio_api api = { .api = UFFD_API, .features = 0 };
  bool via_dev;
  int fd, err;

  fd = open_full(&via_dev);
  err = fd;
  if (fd < 0) goto out;
  err = ioctl(fd, UFFDIO_API, &api) ? -errno : 0;
  *features = api.features;
  close(fd);
out:
  return err;
}

int uffd_open(struct uffd *u, uint64_t want) {
  struct uffdio_api api = { .api = UFFD_API };
  uint64_t supported = 0;
  int fd, err;

  u->fd = -1;
  err = api_supported(&supported);
  if (err) goto out;
  fd = open_full(&u->via_dev);
  err = fd;
  if (fd < 0) goto out;
  api.features = want & supported;
  err = -EPROTO;
  if (ioctl(fd, UFFDIO_API, &api)) goto out_close;
  u->fd = fd;
  u->features = want & supported;
  u->can_move = (u->features & UFFD_FEATURE_MOVE) != 0;
  return 0;

out_close:
  close(fd);
out:
  return err;
}

void uffd_close(struct uffd *u) {
  if (u->fd >= 0) close(u->fd);
  u->fd = -1;
}

int uffd_register(const struct uffd *u, uintptr_t addr, size_t len, uint64_t *ioctls) {
  struct uffdio_register reg = {
    .range = { .start = addr, .len = len },
    .mode = UFFDIO_REGISTER_MODE_MISSING,
  };
  int err;

  err = ioctl(u->fd, UFFDIO_REGISTER, &reg) ? -errno : 0;
  if (ioctls) *ioctls = err ? 0 : reg.ioctls;
  return err;
}

int uffd_unregister(const struct uffd *u, uintptr_t addr, size_t len) {
  struct uffdio_range range = { .start = addr, .len = len };

  return ioctl(u->fd, UFFDIO_UNREGISTER, &range) ? -errno : 0;
}

int uffd_wake(const struct uffd *u, uintptr_t addr, size_t len) {
  struct uffdio_range range = { .start = addr, .len = len };

  return ioctl(u->fd, UFFDIO_WAKE, &range) ? -errno : 0;
}

/* The three leaves share one shape: issue, add the partial progress the
 * kernel reports (a negative field is an error code, not progress), retry
 * on EAGAIN from where it stopped. EAGAIN means a concurrent change of the
 * page tables (a folio being split or locked); a bounded number of retries
 * keeps a livelock from holding a caller forever. */
#define EAGAIN_RETRIES 64
size_t uffd_move(const struct uffd *u, uintptr_t dst, uintptr_t src, size_t len, uint64_t mode, int *err) {
  size_t done = 0;
  unsigned tries = 0;

  *err = 0;
  while (done < len) {
    struct uffdio_move m = { .dst = dst + done, .src = src + done, .len = len - done, .mode = mode };
    int rc = ioctl(u->fd, UFFDIO_MOVE, &m) ? -errno : 0;
    if (m.move > 0) done += (size_t)m.move;
    if (rc == 0) break;
    if (rc == -EAGAIN && ++tries < EAGAIN_RETRIES) continue;
    *err = rc;
    break;
  }
  return done;
}

size_t uffd_copy(const struct uffd *u, uintptr_t dst, uintptr_t src, size_t len, uint64_t mode, int *err) {
  size_t done = 0;
  unsigned tries = 0;

  *err = 0;
  while (done < len) {
    struct uffdio_copy c = { .dst = dst + done, .src = src + done, .len = len - done, .mode = mode };
    int rc = ioctl(u->fd, UFFDIO_COPY, &c) ? -errno : 0;
    if (c.copy > 0) done += (size_t)c.copy;
    if (rc == 0) break;
    if (rc == -EAGAIN && ++tries < EAGAIN_RETRIES) continue;
    *err = rc;
    break;
  }
  return done;
}

size_t uffd_zeropage(const struct uffd *u, uintptr_t dst, size_t len, uint64_t mode, int *err) {
  size_t done = 0;
  unsigned tries = 0;

  *err = 0;
  while (done < len) {
    struct uffdio_zeropage z = { .range = { .start = dst + done, .len = len - done }, .mode = mode };
    int rc = ioctl(u->fd, UFFDIO_ZEROPAGE, &z) ? -errno : 0;
    if (z.zeropage > 0) done += (size_t)z.zeropage;
    if (rc == 0) break;
    if (rc == -EAGAIN && ++tries < EAGAIN_RETRIES) continue;
    *err = rc;
    break;
  }
  return done;
}

int uffd_read(const struct uffd *u, struct uffd_msg *msgs, int max) {
  ssize_t n = read(u->fd, msgs, sizeof *msgs * (size_t)max);

  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -errno;
  return (int)(n / (ssize_t)sizeof *msgs);
}
