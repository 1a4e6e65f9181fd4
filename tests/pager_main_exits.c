/* A program whose main thread ends with pthread_exit() while another
 * thread still allocates: run by test_pager_life.c under LD_PRELOAD with
 * HAKMEM_UFFD=1. glibc ends a process when its last thread ends; the
 * pager's thread must not keep it alive once the program's are gone.
 * With the argument "no-descriptors" the last thread leaves no descriptor
 * free; in every case an exit handler checks that it runs with signals
 * deliverable (it runs on whichever thread ends last: the pager's). */
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

int main(int argc, char **argv)
{
  fill_descriptors = argc > 1 && strcmp(argv[1], "no-descriptors") == 0;
  atexit(signals_are_deliverable);
  pthread_t t;
  if (pthread_create(&t, NULL, allocate_then_leave, NULL) != 0) return 2;
  pthread_detach(t);
  char *q = malloc(100);
  if (q == NULL) return 3;
  memset(q, 1, 100);
  free(q);
  pthread_exit(NULL);
}
