# HAKMEM_CHECK_MADV(ADVICE)
# Define HAVE_<ADVICE> when <sys/mman.h> declares it and madvise links.
# The allocator still checks the call's result at run time: a kernel older
# than the headers answers EINVAL, and each caller has a fallback.
AC_DEFUN([HAKMEM_CHECK_MADV], [
  AC_CACHE_CHECK([for madvise($1)], [hakmem_cv_madv_$1], [
    AC_LINK_IFELSE([AC_LANG_PROGRAM([[#define _GNU_SOURCE 1
#include <sys/mman.h>]], [[return madvise((void *)0, 0, $1);]])],
                   [hakmem_cv_madv_$1=yes], [hakmem_cv_madv_$1=no])])
  AS_IF([test "x$hakmem_cv_madv_$1" = xyes],
        [AC_DEFINE([HAVE_$1], [1], [Define to 1 if madvise($1) is declared.])])
])
