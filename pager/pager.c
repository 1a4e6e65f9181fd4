/* pager.c: the pager's life cycle: configuration, start, stop, fork, and
 * the start at load (HAKMEM_UFFD=1) and stop at exit.
 *
 * Start and stop are serialised by start_lock; the hooks never take it.
 * Starting opens the uffd, builds the pool and the ring, starts the
 * thread, and only then installs the hooks and registers the regions that
 * exist already: from that moment any allocation may fault on a registered
 * range, pthread_create()'s own included, and the thread must be there. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hakmem.h"
#include "heap.h"
#include "internal.h"
#include "lock.h"
#include "options.h"
#include "os.h"
#include "stats.h"
#include "workers.h"

#define PAGER_EXPORT __attribute__((visibility("default")))

/* A sleeping handler: measured here, spinning 20 or 100 us after a fault
 * gained nothing measurable with 2 MiB chunks (one wake-up per 512 pages)
 * and takes the second CPU from the program's other threads and from the
 * background zeroing. */
#define DEFAULT_SPIN_NS 0ull
#define DEFAULT_PERIOD_NS 100000000ull /* 100 ms */

struct pager pager = { .efd = -1, .statfd = -1, .uffd = { .fd = -1 } };
static hk_lock_t start_lock = HK_LOCK_INIT;
LARGE_BSS _Atomic uint64_t pager_ends[PAGER_ENDS];
_Atomic uint64_t *pager_here;

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18 /* Linux 4.14; glibc before 2.27 lacks the name */
#endif

/* ---- configuration ------------------------------------------------------------ */

static size_t pow2_floor(size_t v) {
  size_t p = 1;
  while (p <= v / 2) p *= 2;
  return p;
}

void pager_config_from_options(struct pager_config *c) {
  size_t chunk = (size_t)hakmem_options.pager_chunk_kb * 1024;

  memset(c, 0, sizeof *c);
  chunk = pow2_floor(chunk);
  if (chunk < PAGE_SIZE) chunk = PAGE_SIZE;
  if (chunk > PAGER_UNIT) chunk = PAGER_UNIT;
  c->chunk = chunk;
  c->pool_bytes = (size_t)hakmem_options.pager_pool_mb << 20;
  c->direct = hakmem_options.pager_direct != 0;
  c->read_zeropage = true;
  c->spin_ns = DEFAULT_SPIN_NS;
  c->period_ns = DEFAULT_PERIOD_NS;
}

/* ---- stopping ------------------------------------------------------------------ */

__thread long pager_hooks_here __attribute__((tls_model("initial-exec")));

/* The raw write: write() is a cancellation point, and a thread cancelled
 * inside malloc would leave the pager's count of users, and the
 * allocator's locks, held for ever. The eventfd's counter full: the pager
 * is awake anyway. */
static void wake_pager_thread(void) {
  uint64_t one = 1;
  if (fd_is(pager.efd, &pager.efd_id)) syscall(SYS_write, pager.efd, &one, sizeof one);
}

void pager_kick(void) {
  /* The fence pairs with the pager's store of `sleeping` before its last
   * look for work: either it sees this thread's work, or this sees it
   * sleeping and wakes it. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_exchange(&pager.sleeping, false)) wake_pager_thread();
}

void pager_expect_supply(void) {
  if (pager.use_pool && pool_expect(&pager.pool)) pager_kick();
}

void pager_quiesce(void) {
  if (os_page_supplier() == &pager_hooks) os_set_page_supplier(NULL);
  atomic_store(&pager.state, PAGER_STOPPING);
  /* Hooks of the stopping thread's are below it on its stack (a signal
   * handler that calls exit()), or were left by a siglongjmp(): the pager
   * thread, which quiesces again at its end, must not wait for them
   * either. */
  if (pager_hooks_here) atomic_store(&pager.users_left, pager_hooks_here);
  while (atomic_load(&pager.users) > atomic_load(&pager.users_left)) sched_yield();
}

static void forget_parents_pager(void);

/* A raw clone() child's copy of the parent's running pager: forgotten
 * before this process stops or starts one of its own. */
static void forget_if_parents(void) {
  if (!pager_in_this_process() && (atomic_load(&pager.state) != PAGER_IDLE || pager.thread_live))
    forget_parents_pager();
}

/* Under start_lock, from any state: back to IDLE. */
static void stop_locked(void) {
  forget_if_parents();
  if (atomic_load(&pager.state) == PAGER_IDLE && !pager.thread_live) return;
  pager_quiesce();
  if (pager.thread_live) {
    atomic_store(&pager.stop, true);
    /* Else it sees `stop` at its next look, the period's timer at the latest. */
    wake_pager_thread();
    /* Once main has gone the pager thread leaves by itself, and, the last
     * thread, may be running the program's exit handlers, this among them,
     * or waiting in one for the thread that runs this: it is not joined,
     * only waited for until it has released what it held. */
    if (atomic_load(&pager.leader_gone)) {
      while (!atomic_load(&pager.loop_done)) sched_yield();
      pthread_detach(pager.thread);
    } else {
      pthread_join(pager.thread, NULL);
      thread_and_ring_workers_wait_gone(atomic_load(&pager.tid)); /* the README: a single thread after the stop */
    }
    pager.thread_live = false;
  }
  pager_release_descriptors(); /* the thread did unless it never ran */
  pool_fini(&pager.pool);
  stash_fini(&pager.stash);
  if (fd_is(pager.efd, &pager.efd_id)) close(pager.efd);
  pager.efd = -1;
  atomic_store(&pager.stop, false);
  atomic_store(pager_here, 0);
  atomic_store(&pager.state, PAGER_IDLE);
}

void pager_stop(void) {
  hk_lock(&start_lock);
  stop_locked();
  hk_unlock(&start_lock);
}

bool pager_running(void) { return atomic_load(&pager.state) == PAGER_RUNNING && pager_in_this_process(); }

/* ---- fork ---------------------------------------------------------------------- */

static void atfork_prepare(void) { hk_lock_for_fork(&start_lock); }
static void atfork_parent(void) { hk_unlock_after_fork(&start_lock); }

/* The child has no pager thread, its copy of the uffd belongs to the
 * parent's address space, and its regions lost their registration. A
 * child of fork() forgets the parent's pager here; one of a raw clone()
 * when it first stops or starts a pager (pager_here tells it). */
static void forget_parents_pager(void) {
  if (os_page_supplier() == &pager_hooks) os_set_page_supplier(NULL);
  /* Descriptors the program closed and reused are its own now. */
  if (fd_is(pager.uffd.fd, &pager.uffd_id)) uffd_close(&pager.uffd);
  pager.uffd.fd = -1;
  if (fd_is(pager.efd, &pager.efd_id)) close(pager.efd);
  if (fd_is(pager.statfd, &pager.statfd_id)) close(pager.statfd);
  if (pager.ring.uring.ring_fd > 0 && !fd_is(pager.ring.uring.ring_fd, &pager.ring_id))
    ring_set_fd(&pager.ring, -1);
  ring_forget(&pager.ring);
  pool_forget(&pager.pool);
  stash_forget(&pager.stash);
  pager.efd = -1;
  pager.statfd = -1;
  pager.thread_live = false;
  atomic_store(&pager.users, 0);
  atomic_store(&pager.users_left, 0);
  atomic_store(&pager.sleeping, false);
  atomic_store(&pager.stop, false);
  atomic_store(&pager.state, PAGER_IDLE);
  stats_set(STAT_pager_pool_pages, 0);
}

static void atfork_child(void) {
  hk_lock_reset(&start_lock);
  if (atomic_load(&pager.state) == PAGER_IDLE && !pager.thread_live) return;
  forget_parents_pager();
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void atfork_install(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

/* ---- starting ------------------------------------------------------------------ */

static void register_existing(void *base, size_t len, void *arg) {
  (void)arg;
  uffd_register(&pager.uffd, (uintptr_t)base, len, NULL);
}

static void unregister_region(void *base, size_t len, void *arg) {
  (void)arg;
  uffd_unregister(&pager.uffd, (uintptr_t)base, len);
}

/* Nobody may wait on the uffd once the pager thread is gone. Closing it
 * is not enough: a raw clone() child holds a copy, which keeps the uffd
 * and the registrations alive, and a fault in them would wait for ever;
 * unregistering also wakes the threads that wait. A descriptor that the
 * program closed is forgotten, not closed: its number may be the
 * program's now. (The region headers that os_for_each_region() reads are
 * resident: they are written when a region is mapped.) */
void pager_release_descriptors(void) {
  if (fd_is(pager.uffd.fd, &pager.uffd_id)) {
    os_for_each_region(unregister_region, NULL);
    uffd_close(&pager.uffd);
  }
  pager.uffd.fd = -1;
  if (pager.ring.uring.ring_fd > 0 && !fd_is(pager.ring.uring.ring_fd, &pager.ring_id))
    ring_set_fd(&pager.ring, -1); /* io_uring_queue_exit() unmaps the rings, then closes nothing */
  if (pager.ring.uring.ring_fd != 0) ring_fini(&pager.ring);
  if (fd_is(pager.statfd, &pager.statfd_id)) close(pager.statfd);
  pager.statfd = -1;
}

/* The thread starts with every signal blocked: a handler of the program
 * could call malloc or touch registered memory on it. Its stack is the
 * default size: when main has gone, it may be the process's last thread,
 * and glibc runs the program's exit handlers on it. */
static int thread_start(void) {
  sigset_t all, old;
  pthread_attr_t attr;
  int err;

  sigfillset(&all);
  err = -pthread_attr_init(&attr);
  if (err) goto out;
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pager.start_mask = old;
  atomic_store(&pager.leader_gone, false);
  atomic_store(&pager.loop_done, false);
  err = -pthread_create(&pager.thread, &attr, pager_loop, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (err) goto out;
  pager.thread_live = true;
#ifdef __GLIBC__
  pthread_setname_np(pager.thread, "hakmem-pager");
#endif
out:
  return err;
}

/* The page of pager_here, mapped once and kept. Without MADV_WIPEONFORK
 * (Linux 4.14) a raw clone() child could not tell, so no pager starts. */
static int here_map(void) {
  void *page;

  if (pager_here) return 0;
  page = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return -ENOMEM;
  if (madvise(page, PAGE_SIZE, MADV_WIPEONFORK)) {
    munmap(page, PAGE_SIZE); /* a whole mapping of its own: a refusal would leak one page */
    return -ENOSYS;
  }
  pager_here = page;
  return 0;
}

/* The uffd, the pool, the eventfd, the ring and /proc/self/stat, each
 * descriptor moved out of the program's way (fd.c) and identified, so that
 * one the program closes is never closed again. /proc/self/stat is opened
 * now, not when the program may have no descriptor left. On failure, what
 * was opened is closed. */
static bool ring_refused; /* the last start failed setting up its ring: say_why() */

static int open_channels(const struct pager_config *c) {
  ring_refused = false;
  int err = uffd_open(&pager.uffd, c->no_move ? 0 : UFFD_FEATURE_MOVE);
  if (err) return err;
  pager.uffd.fd = fd_stash(pager.uffd.fd);
  fd_identify(pager.uffd.fd, &pager.uffd_id);
  err = pool_init(&pager.pool, &pager.uffd, c->pool_bytes);
  if (err) goto out_uffd;
  pager.use_pool = pager.pool.can_move;
  /* Half the pool's cap in huge pages. Without them (THP off, no
   * UFFDIO_MOVE) new SuperSlabs take the pool's pages as before. */
  if (pager.use_pool && !c->no_stash) (void)stash_init(&pager.stash, c->pool_bytes / 2);
  pager.efd = eventfd(0, EFD_CLOEXEC); /* blocking: the ring polls it, no worker thread */
  err = -errno;
  if (pager.efd < 0) goto out_pool;
  pager.efd = fd_stash(pager.efd);
  fd_identify(pager.efd, &pager.efd_id);
  err = ring_init(&pager.ring, pager.uffd.fd, pager.efd, c->period_ns);
  ring_refused = err != 0;
  if (err) goto out_efd;
  ring_set_fd(&pager.ring, fd_stash(pager.ring.uring.ring_fd));
  fd_identify(pager.ring.uring.ring_fd, &pager.ring_id);
  pager.statfd = os_open_file("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (pager.statfd >= 0) pager.statfd = fd_stash(pager.statfd);
  fd_identify(pager.statfd, &pager.statfd_id);
  return 0;

out_efd:
  close(pager.efd);
  pager.efd = -1;
out_pool:
  uffd_close(&pager.uffd); /* before the pool goes: unregisters everything */
  pool_fini(&pager.pool);
  stash_fini(&pager.stash);
out_uffd:
  uffd_close(&pager.uffd);
  return err;
}

static void close_channels(void) {
  if (pager.statfd >= 0) close(pager.statfd);
  pager.statfd = -1;
  ring_fini(&pager.ring);
  close(pager.efd);
  pager.efd = -1;
  uffd_close(&pager.uffd);
  pool_fini(&pager.pool);
  stash_fini(&pager.stash);
}

static int start_locked(const struct pager_config *c) {
  int err;

  forget_if_parents();
  /* A pager that stopped by itself (an error, its descriptors closed by
   * the program) is put to rest first, as a stop would. */
  if (atomic_load(&pager.state) == PAGER_STOPPING && atomic_load(&pager.loop_done)) stop_locked();
  if (atomic_load(&pager.state) != PAGER_IDLE || pager.thread_live) return -EALREADY;
  pthread_once(&atfork_once, atfork_install);
  err = here_map();
  if (err) return err;
  pager.cfg = *c;
  err = open_channels(c);
  if (err) return err;
  pager.last_fault_ns = 0;
  /* The thread first: pthread_create() itself allocates, and once the
   * hooks are in, an allocation may fault on a registered range. */
  err = thread_start();
  if (err) {
    close_channels();
    return err;
  }
  atomic_store(pager_here, 1);
  if (!atomic_compare_exchange_strong(&pager.state, &(int){ PAGER_IDLE }, PAGER_RUNNING)) {
    stop_locked(); /* the thread failed already */
    return -EIO;
  }
  os_set_page_supplier(&pager_hooks);
  /* After the hooks are in: a region mapped meanwhile is registered by
   * its hook, and registering one twice is harmless. Not those left to
   * the kernel's faults (a heap's first SuperSlab); one switched so while
   * this runs may stay registered, which costs its pages, not its
   * correctness: the pager serves its faults. */
  os_for_each_served_region(register_existing, NULL);
  return 0;
}

int pager_start(const struct pager_config *c) {
  int err;

  hk_lock(&start_lock);
  err = start_locked(c);
  hk_unlock(&start_lock);
  return err;
}

int pager_get_info(struct pager_info *out) {
  memset(out, 0, sizeof *out);
  hk_lock(&start_lock);
  if (pager_running()) {
    out->features = pager.uffd.features;
    out->via_dev = pager.uffd.via_dev;
    out->can_move = pager.use_pool;
    sigset_t saved;
    pool_lock(&pager.pool, &saved);
    out->clean_pages = pager.pool.clean_pages;
    out->dirty_pages = pager.pool.dirty_pages;
    out->target_pages = pager.pool.target_pages;
    out->keep_pages = pager.pool.keep_pages;
    pool_unlock(&pager.pool, &saved);
    out->stash_open = pager.stash.base && atomic_load(&pager.stash.open);
    out->stash_pages = stash_level(&pager.stash);
  }
  hk_unlock(&start_lock);
  return 0;
}

/* ---- the public interface --------------------------------------------------------- */

/* As the malloc family, both leave errno alone unless they fail. */
PAGER_EXPORT int hakmem_pager_start(void) {
  struct pager_config c;
  int saved = errno, err;

  pager_config_from_options(&c);
  err = pager_start(&c);
  if (err && err != -EALREADY) {
    errno = -err;
    return -1;
  }
  errno = saved;
  return 0;
}

PAGER_EXPORT void hakmem_pager_stop(void) {
  int saved = errno;
  pager_stop();
  errno = saved;
}

PAGER_EXPORT int hakmem_pager_active(void) { return pager_running(); }

/* ---- load and exit ------------------------------------------------------------------- */

static void say_why(int err) {
  char line[200];
  if (ring_refused)
    snprintf(line, sizeof line, "hakmem: HAKMEM_UFFD=1 but no io_uring may be set up (errno %d; "
                                "kernel.io_uring_disabled, a seccomp filter?); the kernel's fault path serves\n", -err);
  else if (err == -EPERM)
    snprintf(line, sizeof line, "hakmem: HAKMEM_UFFD=1 but no full userfaultfd may be opened (no access to "
                                "/dev/userfaultfd, no CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=0); the "
                                "kernel's fault path serves\n");
  else if (err == -ENOSYS)
    snprintf(line, sizeof line, "hakmem: HAKMEM_UFFD=1 but this kernel has no userfaultfd; the kernel's fault "
                                "path serves\n");
  else
    snprintf(line, sizeof line, "hakmem: HAKMEM_UFFD=1 but the pager did not start (errno %d); the kernel's "
                                "fault path serves\n", -err);
  if (write(2, line, strlen(line)) < 0) { /* stderr is gone: nothing to do */ }
}

__attribute__((constructor)) static void pager_at_load(void) {
  struct pager_config c;
  int saved = errno, err;

  heap_global_init(); /* reads the options; idempotent */
  if (hakmem_options.uffd) {
    pager_config_from_options(&c);
    err = pager_start(&c);
    if (err && err != -EALREADY) say_why(err);
  }
  errno = saved;
}

__attribute__((destructor)) static void pager_at_exit(void) { hakmem_pager_stop(); }
