# Unit tests of the allocator's modules, against its internal interfaces.
#
# One Criterion program per module, each linking the allocator's
# convenience library: the whole program (Criterion included) allocates
# through hakmem, and the tests reach the internal headers of lib/ through
# AM_CPPFLAGS. -fno-builtin keeps gcc from folding malloc/free pairs.
if HAVE_CRITERION
hakmem_unit_cflags = $(AM_CFLAGS) $(CRITERION_CFLAGS) -fno-builtin
hakmem_unit_ldadd = $(hakmem_core_ldadd) $(CRITERION_LIBS) $(PTHREAD_LIBS)

hakmem_unit_tests = \
	tests/test_unit_size_class \
	tests/test_unit_superslab \
	tests/test_unit_tcache \
	tests/test_unit_remote \
	tests/test_unit_lru \
	tests/test_unit_large \
	tests/test_unit_huge \
	tests/test_unit_stats \
	tests/test_unit_os \
	tests/test_unit_zero \
	tests/test_unit_lock \
	tests/test_unit_budget \
	tests/test_unit_fd
check_PROGRAMS += $(hakmem_unit_tests)
TESTS += $(hakmem_unit_tests)

tests_test_unit_fd_SOURCES = tests/test_unit_fd.c
tests_test_unit_fd_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_fd_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_fd_LDADD = $(hakmem_unit_ldadd)

tests_test_unit_budget_SOURCES = tests/test_unit_budget.c
tests_test_unit_budget_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_budget_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_budget_LDADD = $(hakmem_unit_ldadd)

tests_test_unit_lock_SOURCES = tests/test_unit_lock.c
tests_test_unit_lock_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_lock_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_lock_LDADD = $(hakmem_unit_ldadd)

tests_test_unit_zero_SOURCES = tests/test_unit_zero.c
tests_test_unit_zero_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_zero_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_zero_LDADD = $(hakmem_unit_ldadd)

tests_test_unit_size_class_SOURCES = tests/test_unit_size_class.c
tests_test_unit_size_class_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_size_class_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_size_class_LDADD = $(hakmem_unit_ldadd)

tests_test_unit_superslab_SOURCES = tests/test_unit_superslab.c
tests_test_unit_superslab_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_superslab_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_superslab_LDADD = $(hakmem_unit_ldadd)

tests_test_unit_tcache_SOURCES = tests/test_unit_tcache.c
tests_test_unit_tcache_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_tcache_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_tcache_LDADD = $(hakmem_unit_ldadd)

tests_test_unit_remote_SOURCES = tests/test_unit_remote.c
tests_test_unit_remote_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_remote_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_remote_LDADD = $(hakmem_unit_ldadd)

tests_test_unit_lru_SOURCES = tests/test_unit_lru.c
tests_test_unit_lru_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_lru_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_lru_LDADD = $(hakmem_unit_ldadd)

tests_test_unit_large_SOURCES = tests/test_unit_large.c
tests_test_unit_large_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_large_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_large_LDADD = $(hakmem_unit_ldadd)

tests_test_unit_huge_SOURCES = tests/test_unit_huge.c
tests_test_unit_huge_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_huge_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_huge_LDADD = $(hakmem_unit_ldadd)

tests_test_unit_stats_SOURCES = tests/test_unit_stats.c
tests_test_unit_stats_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_stats_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_stats_LDADD = $(hakmem_unit_ldadd)

tests_test_unit_os_SOURCES = tests/test_unit_os.c
tests_test_unit_os_CPPFLAGS = $(AM_CPPFLAGS)
tests_test_unit_os_CFLAGS = $(hakmem_unit_cflags)
tests_test_unit_os_LDADD = $(hakmem_unit_ldadd)
endif

EXTRA_DIST += tests/unit_helpers.h tests/smaps.h
