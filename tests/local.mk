# tests/: Criterion tests, one program per concept, and the integration
# test that runs real programs under LD_PRELOAD.
#
# Each Criterion program links the allocator's convenience library, so the
# whole program (Criterion included) allocates through hakmem. -fno-builtin
# keeps gcc from folding malloc/free pairs or assuming malloc's behaviour.
if HAVE_CRITERION
hakmem_test_cflags = $(AM_CFLAGS) $(CRITERION_CFLAGS) -fno-builtin
hakmem_test_ldadd = $(hakmem_core_ldadd) $(CRITERION_LIBS) $(PTHREAD_LIBS)

hakmem_api_tests = \
	tests/test_api_align \
	tests/test_api_calloc \
	tests/test_api_errno \
	tests/test_api_introspect \
	tests/test_api_malloc \
	tests/test_api_realloc \
	tests/test_api_stats \
	tests/test_api_usable \
	tests/test_death_double_free \
	tests/test_death_invalid_free \
	tests/test_death_realloc \
	tests/test_stress_churn \
	tests/test_stress_fork \
	tests/test_stress_random \
	tests/test_stress_threads \
	tests/test_stress_trim
check_PROGRAMS += $(hakmem_api_tests)
TESTS += $(hakmem_api_tests)

tests_test_api_align_SOURCES = tests/test_api_align.c tests/helpers.h
tests_test_api_align_CFLAGS = $(hakmem_test_cflags)
tests_test_api_align_LDADD = $(hakmem_test_ldadd)

tests_test_api_calloc_SOURCES = tests/test_api_calloc.c tests/helpers.h
tests_test_api_calloc_CFLAGS = $(hakmem_test_cflags)
tests_test_api_calloc_LDADD = $(hakmem_test_ldadd)

tests_test_api_errno_SOURCES = tests/test_api_errno.c tests/helpers.h
tests_test_api_errno_CFLAGS = $(hakmem_test_cflags)
tests_test_api_errno_LDADD = $(hakmem_test_ldadd)

tests_test_api_introspect_SOURCES = tests/test_api_introspect.c tests/helpers.h
tests_test_api_introspect_CFLAGS = $(hakmem_test_cflags)
tests_test_api_introspect_LDADD = $(hakmem_test_ldadd)

tests_test_api_malloc_SOURCES = tests/test_api_malloc.c tests/helpers.h
tests_test_api_malloc_CFLAGS = $(hakmem_test_cflags)
tests_test_api_malloc_LDADD = $(hakmem_test_ldadd)

tests_test_api_realloc_SOURCES = tests/test_api_realloc.c tests/helpers.h
tests_test_api_realloc_CFLAGS = $(hakmem_test_cflags)
tests_test_api_realloc_LDADD = $(hakmem_test_ldadd)

tests_test_api_stats_SOURCES = tests/test_api_stats.c tests/helpers.h
tests_test_api_stats_CFLAGS = $(hakmem_test_cflags)
tests_test_api_stats_LDADD = $(hakmem_test_ldadd)

tests_test_api_usable_SOURCES = tests/test_api_usable.c tests/helpers.h
tests_test_api_usable_CFLAGS = $(hakmem_test_cflags)
tests_test_api_usable_LDADD = $(hakmem_test_ldadd)

tests_test_death_double_free_SOURCES = tests/test_death_double_free.c tests/helpers.h
tests_test_death_double_free_CFLAGS = $(hakmem_test_cflags)
tests_test_death_double_free_LDADD = $(hakmem_test_ldadd)

tests_test_death_invalid_free_SOURCES = tests/test_death_invalid_free.c tests/helpers.h
tests_test_death_invalid_free_CFLAGS = $(hakmem_test_cflags)
tests_test_death_invalid_free_LDADD = $(hakmem_test_ldadd)

tests_test_death_realloc_SOURCES = tests/test_death_realloc.c tests/helpers.h
tests_test_death_realloc_CFLAGS = $(hakmem_test_cflags)
tests_test_death_realloc_LDADD = $(hakmem_test_ldadd)

tests_test_stress_churn_SOURCES = tests/test_stress_churn.c tests/helpers.h
tests_test_stress_churn_CFLAGS = $(hakmem_test_cflags)
tests_test_stress_churn_LDADD = $(hakmem_test_ldadd)

tests_test_stress_fork_SOURCES = tests/test_stress_fork.c tests/helpers.h
tests_test_stress_fork_CFLAGS = $(hakmem_test_cflags)
tests_test_stress_fork_LDADD = $(hakmem_test_ldadd)

tests_test_stress_random_SOURCES = tests/test_stress_random.c tests/helpers.h
tests_test_stress_random_CFLAGS = $(hakmem_test_cflags)
tests_test_stress_random_LDADD = $(hakmem_test_ldadd)

tests_test_stress_threads_SOURCES = tests/test_stress_threads.c tests/helpers.h
tests_test_stress_threads_CFLAGS = $(hakmem_test_cflags)
tests_test_stress_threads_LDADD = $(hakmem_test_ldadd)

tests_test_stress_trim_SOURCES = tests/test_stress_trim.c tests/helpers.h
tests_test_stress_trim_CFLAGS = $(hakmem_test_cflags)
tests_test_stress_trim_LDADD = $(hakmem_test_ldadd)

endif

# Real programs with and without LD_PRELOAD=libhakmem.so; the script finds
# the library through HAKMEM_BUILDDIR.
TESTS += tests/test_integration.sh
EXTRA_DIST += tests/rss.h
EXTRA_DIST += tests/unnamed_file.h
EXTRA_DIST += tests/test_integration.sh
AM_TESTS_ENVIRONMENT = HAKMEM_BUILDDIR='$(abs_top_builddir)'; export HAKMEM_BUILDDIR; \
	CC='$(CC)'; PKG_CONFIG='$(PKG_CONFIG)'; export CC PKG_CONFIG;

# Linking as hakmem.pc says: shared under --as-needed, and static.
TESTS += tests/test_link.sh
EXTRA_DIST += tests/test_link.sh

# Under a preloaded library whose open() wrapper allocates.
TESTS += tests/test_wrapped_open.sh
EXTRA_DIST += tests/test_wrapped_open.sh
EXTRA_DIST += tests/preload_setup.sh

# Fork handlers that allocate, registered before hakmem's.
TESTS += tests/test_fork_handlers.sh
EXTRA_DIST += tests/test_fork_handlers.sh

# The pages of hakmem's .bss that a small program touches.
TESTS += tests/test_footprint.sh
EXTRA_DIST += tests/test_footprint.sh

# The cache of freed regions under a limit on the address space.
TESTS += tests/test_address_limit.sh
EXTRA_DIST += tests/test_address_limit.sh
