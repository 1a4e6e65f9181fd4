# HAKMEM_LINK_URING
# Choose how libhakmem.so links liburing. Loading liburing.so.2 costs every
# program about ten page faults at start-up, although only the pager (off
# unless asked for) calls into it. When pkg-config's libdir holds a
# liburing.a whose objects can go into a shared library (Debian builds them
# position-independent), link that archive in instead; the linker version
# script keeps its symbols local. Otherwise link the shared library.
# Sets LIBURING_LINK, the libraries to link libhakmem with; LIBURING_LIBS
# stays pkg-config's for hakmem.pc.
AC_DEFUN([HAKMEM_LINK_URING], [
  LIBURING_LINK=$LIBURING_LIBS
  hakmem_uring_archive="`$PKG_CONFIG --variable=libdir liburing`/liburing.a"
  AC_CACHE_CHECK([whether $hakmem_uring_archive can be linked into a shared library],
                 [hakmem_cv_uring_archive], [
    hakmem_cv_uring_archive=no
    AS_IF([test -f "$hakmem_uring_archive"], [
      hakmem_save_CFLAGS=$CFLAGS hakmem_save_LDFLAGS=$LDFLAGS hakmem_save_LIBS=$LIBS
      CFLAGS="$CFLAGS $LIBURING_CFLAGS -fPIC"
      LDFLAGS="$LDFLAGS -shared -Wl,-z,defs"
      LIBS="$hakmem_uring_archive $LIBS"
      AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <liburing.h>]],
                                      [[struct io_uring r; return io_uring_queue_init(8, &r, 0);]])],
                     [hakmem_cv_uring_archive=yes])
      CFLAGS=$hakmem_save_CFLAGS LDFLAGS=$hakmem_save_LDFLAGS LIBS=$hakmem_save_LIBS])])
  AS_IF([test "x$hakmem_cv_uring_archive" = xyes], [LIBURING_LINK=$hakmem_uring_archive])
  AC_SUBST([LIBURING_LINK])
])
