/* pager_probe: say whether hakmem's pager runs in this process.
 *
 * The harness runs it under LD_PRELOAD=libhakmem.so with HAKMEM_UFFD=1
 * before it schedules the pager configurations. It prints "pager
 * active=1" or "pager active=0"; it exits 1 when hakmem is not loaded. */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  int (*active)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "hakmem_pager_active");
  if (active == NULL) {
    fprintf(stderr, "pager_probe: hakmem is not loaded\n");
    return 1;
  }
  /* Touch fresh memory, so a pager that starts lazily has started. */
  char *p = malloc(1 << 20);
  if (p != NULL)
    p[0] = 1;
  printf("pager active=%d\n", active());
  free(p);
  return 0;
}
