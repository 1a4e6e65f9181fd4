/* fd.h: descriptors the library holds (the pager's uffd, eventfd,
 * io_uring and /proc/self/stat; the copy of stderr for the report at
 * exit): where they go,
 * and whether they are still the library's.
 *
 * A program may close every descriptor it has (close_range, closefrom,
 * daemons do, and `exec 3>file` in a shell) and then get the numbers back
 * for files of its own. The library records what each descriptor is when
 * it opens it, and never writes to, closes or issues an ioctl on a number
 * that no longer is. */
#ifndef HAKMEM_FD_H
#define HAKMEM_FD_H

#include <stdbool.h>
#include <sys/types.h>

struct fd_identity {
  dev_t dev;
  ino_t ino;
  bool known;
};

/* fd moved out of the program's way (see fd.c); the new number, or fd
 * where it was when it cannot move. */
int fd_stash(int fd);

/* Record what fd is now. */
void fd_identify(int fd, struct fd_identity *id);

/* Whether fd is still the file recorded by fd_identify(). */
bool fd_is(int fd, const struct fd_identity *id);

#endif /* HAKMEM_FD_H */
