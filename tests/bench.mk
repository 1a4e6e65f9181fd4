# Tests of the benchmark harness (not benchmarks: nothing here is timed).
#
# They link the harness's sources (bench/harness_*.c) and check its
# parsing, medians, CSV and report; test_bench_e2e runs the suite end to
# end with tiny parameters on glibc and, when it is built, hakmem.
if HAVE_CRITERION
bench_test_cflags = $(AM_CFLAGS) $(CRITERION_CFLAGS)
bench_test_cppflags = $(AM_CPPFLAGS) -I$(top_srcdir)/bench \
	-DBENCH_BUILDDIR='"$(abs_top_builddir)"'
bench_test_ldadd = $(CRITERION_LIBS) $(PTHREAD_LIBS) -lm

bench_tests = \
	tests/test_bench_e2e \
	tests/test_bench_report \
	tests/test_bench_result \
	tests/test_bench_stats
check_PROGRAMS += $(bench_tests)
TESTS += $(bench_tests)

tests_test_bench_result_SOURCES = tests/test_bench_result.c \
	bench/harness_result.c bench/harness_result.h
tests_test_bench_result_CFLAGS = $(bench_test_cflags)
tests_test_bench_result_CPPFLAGS = $(bench_test_cppflags)
tests_test_bench_result_LDADD = $(bench_test_ldadd)

tests_test_bench_stats_SOURCES = tests/test_bench_stats.c \
	bench/harness_stats.c bench/harness_stats.h \
	bench/harness_plan.c bench/harness_plan.h \
	bench/harness_config.c bench/harness_config.h \
	bench/harness_run.c bench/harness_run.h
tests_test_bench_stats_CFLAGS = $(bench_test_cflags)
tests_test_bench_stats_CPPFLAGS = $(bench_test_cppflags)
tests_test_bench_stats_LDADD = $(bench_test_ldadd)

tests_test_bench_report_SOURCES = tests/test_bench_report.c $(bench_harness_sources)
tests_test_bench_report_CFLAGS = $(bench_test_cflags)
tests_test_bench_report_CPPFLAGS = $(bench_test_cppflags)
tests_test_bench_report_LDADD = $(bench_test_ldadd)

# The end-to-end run needs the (dynamic) workloads, the pager probe and
# the harness's program.
tests_test_bench_e2e_SOURCES = tests/test_bench_e2e.c $(bench_harness_sources)
tests_test_bench_e2e_CFLAGS = $(bench_test_cflags)
tests_test_bench_e2e_CPPFLAGS = $(bench_test_cppflags)
tests_test_bench_e2e_LDADD = $(bench_test_ldadd)
EXTRA_tests_test_bench_e2e_DEPENDENCIES = \
	$(bench_workload_programs:=$(EXEEXT)) \
	bench/hakmem-bench$(EXEEXT) \
	bench/pager_probe$(EXEEXT) \
	bench/page_costs$(EXEEXT) \
	lib/libhakmem.la
endif
