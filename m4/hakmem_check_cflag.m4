# HAKMEM_CHECK_CFLAG(FLAG, VARIABLE)
# Append FLAG to VARIABLE when the C compiler accepts it (with -Werror so
# that a flag the compiler only warns about is not taken).
AC_DEFUN([HAKMEM_CHECK_CFLAG], [
  AS_VAR_PUSHDEF([cache], [hakmem_cv_cflag_$1])
  AC_CACHE_CHECK([whether $CC accepts $1], [cache], [
    hakmem_save_CFLAGS=$CFLAGS
    CFLAGS="$CFLAGS -Werror $1"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
                      [AS_VAR_SET([cache], [yes])], [AS_VAR_SET([cache], [no])])
    CFLAGS=$hakmem_save_CFLAGS])
  AS_VAR_IF([cache], [yes], [$2="$$2 $1"])
  AS_VAR_POPDEF([cache])
])
