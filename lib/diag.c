/* diag.c: the free cookie's secret and the one-line fatal report. */
#include "diag.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

HIDDEN struct hot_words hk_hot = { .diag_secret = 0x9e3779b97f4a7c15u /* until diag_init() */ };

void diag_init(void) {
  uintptr_t s = 0;
  if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    s = (uintptr_t)t.tv_nsec * 0x9e3779b97f4a7c15u ^ (uintptr_t)&s;
  }
  hk_hot.diag_secret = s | 1; /* odd: never equal to an address's own bits */
}

void diag_write(int fd, const char *s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

char *diag_format_u64(char *buf, uint64_t v, unsigned base) {
  char tmp[24];
  int i = 0;
  do {
    tmp[i++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  int j = 0;
  if (base == 16) { buf[j++] = '0'; buf[j++] = 'x'; }
  while (i) buf[j++] = tmp[--i];
  buf[j] = 0;
  return buf;
}

void diag_fatal(const char *what, const void *ptr, const char *detail) {
  char line[256], num[24];
  line[0] = 0;
  strcat(line, "hakmem: ");
  strncat(line, what, 96);
  strcat(line, " ");
  strcat(line, diag_format_u64(num, (uintptr_t)ptr, 16));
  if (detail) {
    strcat(line, " (");
    strncat(line, detail, 96);
    strcat(line, ")");
  }
  strcat(line, "\n");
  /* stderr may be a pipe whose reader has gone: its SIGPIPE would end the
   * process before abort(), with no core and a status that names no
   * allocator error. */
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, NULL);
  diag_write(2, line);
  abort();
}

void diag_fatal_freed(const char *op, const void *ptr) {
  if (strncmp(op, "free()", 6) == 0) diag_fatal("free(): double free", ptr, NULL);
  diag_fatal(op, ptr, "block already freed");
}
