/* A program whose main thread ends with pthread_exit() while another
 * thread still allocates: run by test_pager_life.c under LD_PRELOAD with
 * HAKMEM_UFFD=1. glibc ends a process when its last thread ends; the
 * pager's thread must not keep it alive once the program's are gone.
 * With the argument "no-descriptors" the last thread leaves no descriptor
 * free; with "main-only" main has no other thread, so the pager's is the
 * last. The exit handlers, which may run on the pager's thread, need
 * signals deliverable, a deep stack, and to start and join a thread. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int fill_descriptors;

static void *allocate_then_leave(void *arg)
{
  (void)arg;
  usleep(100000); /* main is gone by now */
  size_t len = (size_t)8 << 20;
  char *p = malloc(len);
  if (p == NULL) abort();
  memset(p, 0x5A, len);
  free(p);
  if (fill_descriptors) {
    struct rlimit r = { 64, 64 };
    setrlimit(RLIMIT_NOFILE, &r);
    while (dup(0) >= 0) {
    }
  }
  return NULL;
}

static void signals_are_deliverable(void)
{
  sigset_t now;
  pthread_sigmask(SIG_SETMASK, NULL, &now);
  if (sigismember(&now, SIGTERM) || sigismember(&now, SIGALRM)) _exit(4);
}

static void stack_is_deep(void)
{
  volatile char deep[1 << 20];
  memset((char *)deep, 1, sizeof deep);
  if (deep[12345] != 1) _exit(5);
}

static void *nothing(void *arg) { return arg; }

static void a_thread_is_joined(void)
{
  pthread_t t;
  if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0) _exit(6);
}

int main(int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "plain";
  fill_descriptors = strcmp(mode, "no-descriptors") == 0;
  atexit(signals_are_deliverable);
  atexit(stack_is_deep);
  atexit(a_thread_is_joined);
  /* A huge block, served by the pager while main runs. */
  size_t len = (size_t)8 << 20;
  char *q = malloc(len);
  if (q == NULL) return 3;
  memset(q, 1, len);
  free(q);
  pthread_t t;
  if (strcmp(mode, "main-only") != 0) {
    if (pthread_create(&t, NULL, allocate_then_leave, NULL) != 0) return 2;
    pthread_detach(t);
  }
  pthread_exit(NULL);
}
