# HAKMEM_CHECK_UFFD
# Probe <linux/userfaultfd.h> for what the pager uses. UFFDIO_MOVE (Linux
# 6.8) is missing from older headers (Debian 12's among them); the pager
# defines its ABI itself and detects the feature at run time, so a missing
# declaration is recorded, not an error.
AC_DEFUN([HAKMEM_CHECK_UFFD], [
  AC_CHECK_DECLS([UFFDIO_MOVE, UFFD_FEATURE_MOVE, USERFAULTFD_IOC_NEW,
                  UFFD_USER_MODE_ONLY, UFFD_FEATURE_EVENT_FORK,
                  UFFD_FEATURE_EVENT_REMAP, UFFD_FEATURE_EVENT_UNMAP,
                  UFFD_FEATURE_EVENT_REMOVE],
                 [], [], [[#include <linux/userfaultfd.h>]])
  AC_CHECK_DECLS([io_uring_prep_madvise], [], [], [[#include <liburing.h>]])
])
