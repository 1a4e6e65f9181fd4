# Tests of the pager (--enable-uffd builds). Each program links the
# allocator's convenience library, which holds the pager's objects, and
# reaches the pager's internal headers; a test that needs userfaultfd
# skips with its reason when the machine gives none.
EXTRA_DIST += tests/test_pager_nomalloc.sh tests/test_pager_cpython.sh
if ENABLE_UFFD
TESTS += tests/test_pager_nomalloc.sh tests/test_pager_cpython.sh

if HAVE_CRITERION
pager_test_cflags = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(LIBURING_CFLAGS) -fno-builtin \
	-I$(top_srcdir)/pager -DHAKMEM_TEST_SO='"$(abs_top_builddir)/lib/.libs/libhakmem.so"' \
	-DHAKMEM_TEST_MAIN_EXITS='"$(abs_top_builddir)/tests/pager_main_exits"'
pager_test_ldadd = $(hakmem_core_ldadd) $(CRITERION_LIBS) $(PTHREAD_LIBS)

pager_tests = \
	tests/test_pager_fork \
	tests/test_pager_life \
	tests/test_pager_pool \
	tests/test_pager_ring \
	tests/test_pager_serve \
	tests/test_pager_stash \
	tests/test_pager_uffd
check_PROGRAMS += $(pager_tests) tests/pager_main_exits
TESTS += $(pager_tests)

# Run by test_pager_life under LD_PRELOAD: plain libc, no hakmem linked.
tests_pager_main_exits_SOURCES = tests/pager_main_exits.c
tests_pager_main_exits_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_pager_main_exits_LDADD = $(PTHREAD_LIBS)

tests_test_pager_fork_SOURCES = tests/test_pager_fork.c tests/test_pager_helpers.h
tests_test_pager_fork_CFLAGS = $(pager_test_cflags)
tests_test_pager_fork_LDADD = $(pager_test_ldadd)

tests_test_pager_life_SOURCES = tests/test_pager_life.c tests/test_pager_helpers.h
tests_test_pager_life_CFLAGS = $(pager_test_cflags)
tests_test_pager_life_LDADD = $(pager_test_ldadd)

tests_test_pager_pool_SOURCES = tests/test_pager_pool.c tests/test_pager_helpers.h
tests_test_pager_pool_CFLAGS = $(pager_test_cflags)
tests_test_pager_pool_LDADD = $(pager_test_ldadd)

tests_test_pager_ring_SOURCES = tests/test_pager_ring.c tests/test_pager_helpers.h
tests_test_pager_ring_CFLAGS = $(pager_test_cflags)
tests_test_pager_ring_LDADD = $(pager_test_ldadd)

tests_test_pager_serve_SOURCES = tests/test_pager_serve.c tests/test_pager_helpers.h
tests_test_pager_serve_CFLAGS = $(pager_test_cflags)
tests_test_pager_serve_LDADD = $(pager_test_ldadd)

tests_test_pager_stash_SOURCES = tests/test_pager_stash.c tests/test_pager_helpers.h
tests_test_pager_stash_CFLAGS = $(pager_test_cflags)
tests_test_pager_stash_LDADD = $(pager_test_ldadd)

tests_test_pager_uffd_SOURCES = tests/test_pager_uffd.c tests/test_pager_helpers.h
tests_test_pager_uffd_CFLAGS = $(pager_test_cflags)
tests_test_pager_uffd_LDADD = $(pager_test_ldadd)
endif
endif
