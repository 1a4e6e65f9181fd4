/* A program whose main thread ends with pthread_exit() while another
 * thread still allocates: run by test_pager_life.c under LD_PRELOAD with
 * HAKMEM_UFFD=1. glibc ends a process when its last thread ends; the
 * pager's thread must not keep it alive once the program's are gone. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *allocate_then_leave(void *arg)
{
  (void)arg;
  usleep(100000); /* main is gone by now */
  size_t len = (size_t)8 << 20;
  char *p = malloc(len);
  if (p == NULL) abort();
  memset(p, 0x5A, len);
  free(p);
  return NULL;
}

int main(void)
{
  pthread_t t;
  if (pthread_create(&t, NULL, allocate_then_leave, NULL) != 0) return 2;
  pthread_detach(t);
  char *q = malloc(100);
  if (q == NULL) return 3;
  memset(q, 1, 100);
  free(q);
  pthread_exit(NULL);
}
