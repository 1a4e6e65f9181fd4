/* uffd.h: the userfaultfd calls the pager makes, and nothing else.
 *
 * Every function returns 0 (or a count) on success and -errno on failure;
 * none sets errno for the caller, none allocates. The range operations
 * (move, copy, zeropage) report partial progress: they return the bytes
 * done from the start of the range and store in *err the -errno that
 * stopped them (0 when the whole range was done). -EAGAIN is retried here;
 * -EEXIST means the page at dst + done is already present. */
#ifndef HAKMEM_PAGER_UFFD_H
#define HAKMEM_PAGER_UFFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/userfaultfd.h>

/* The UFFDIO_MOVE ABI (Linux 6.8), absent from older headers such as
 * Debian 12's. The feature is detected at run time. */
#ifndef UFFDIO_MOVE
struct uffdio_move {
  uint64_t dst;
  uint64_t src;
  uint64_t len;
#define UFFDIO_MOVE_MODE_DONTWAKE ((uint64_t)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((uint64_t)1 << 1)
  uint64_t mode;
  int64_t move;
};
#define _UFFDIO_MOVE (0x05)
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC 0xAA
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00)
#endif

/* An open, negotiated userfaultfd. */
struct uffd {
  int fd;            /* O_NONBLOCK | O_CLOEXEC; -1 when closed */
  uint64_t features; /* the features negotiated */
  bool can_move;     /* UFFDIO_MOVE negotiated (the pool checks it is allowed) */
  bool via_dev;      /* opened through /dev/userfaultfd */
};

/* Open a full userfaultfd (faults taken inside the kernel, such as read(2)
 * into a registered range, are trapped too): /dev/userfaultfd with
 * USERFAULTFD_IOC_NEW, else the syscall without UFFD_USER_MODE_ONLY. Never
 * a user-mode-only one. Negotiates `want` & what the kernel supports.
 * -EPERM: no full userfaultfd can be had; -ENOSYS: none at all. */
int uffd_open(struct uffd *u, uint64_t want);
void uffd_close(struct uffd *u);

/* Register / unregister [addr, addr+len) for MISSING faults. *ioctls
 * (may be NULL) receives the UFFDIO_* operations the range allows, as
 * bits numbered by _UFFDIO_COPY, _UFFDIO_MOVE and so on. Returns 0 or
 * -errno. The hooks and the pager's start and stop go on past a refusal:
 * a range left unregistered faults as the kernel's, one left registered
 * is served by the pager as before, and unmapping a range ends its
 * registration in any case. */
int uffd_register(const struct uffd *u, uintptr_t addr, size_t len, uint64_t *ioctls);
int uffd_unregister(const struct uffd *u, uintptr_t addr, size_t len);

size_t uffd_move(const struct uffd *u, uintptr_t dst, uintptr_t src, size_t len, uint64_t mode, int *err);
size_t uffd_copy(const struct uffd *u, uintptr_t dst, uintptr_t src, size_t len, uint64_t mode, int *err);
size_t uffd_zeropage(const struct uffd *u, uintptr_t dst, size_t len, uint64_t mode, int *err);
int uffd_wake(const struct uffd *u, uintptr_t addr, size_t len);

/* Read up to `max` messages without blocking: the count, 0 when none is
 * pending, or -errno. */
int uffd_read(const struct uffd *u, struct uffd_msg *msgs, int max);

#endif /* HAKMEM_PAGER_UFFD_H */
