# bench/: workloads and the harness; not part of make check.
#
# Each workload is a program of its own, built twice: bench/<name> runs
# under LD_PRELOAD (glibc, mimalloc, jemalloc, tcmalloc, hakmem) and
# bench/<name>-static is linked with libhakmem.a. They, the pager probe
# and the harness bench/hakmem-bench are EXTRA_PROGRAMS: `make bench` and
# `make bench-quick` build them, `make` does not. Workloads are compiled
# with -fno-builtin-malloc (and calloc, realloc, free) so that gcc cannot
# fold a malloc/free pair away.
#
#   make bench                  full suite (5 repetitions)
#   make bench-quick            short suite, within 3 minutes on 2 cores
#   make bench BENCH_ARGS=...   extra hakmem-bench options (--reps=7,
#                               --workloads=grow,calloc, --configs=...)
# Both write bench-report/report.md, results.csv and report.svg here.

bench_workload_programs = \
	bench/random_mixed \
	bench/tiny_hot \
	bench/grow \
	bench/regrow \
	bench/calloc \
	bench/large \
	bench/midsize \
	bench/vector \
	bench/larson \
	bench/prodcons \
	bench/churn \
	bench/rebuild

bench_static_programs = \
	bench/random_mixed-static \
	bench/tiny_hot-static \
	bench/grow-static \
	bench/regrow-static \
	bench/calloc-static \
	bench/large-static \
	bench/midsize-static \
	bench/vector-static \
	bench/larson-static \
	bench/prodcons-static \
	bench/churn-static \
	bench/rebuild-static

bench_harness_sources = \
	bench/harness_config.c \
	bench/harness_config.h \
	bench/harness_csv.c \
	bench/harness_csv.h \
	bench/harness_format.c \
	bench/harness_format.h \
	bench/harness_machine.c \
	bench/harness_machine.h \
	bench/harness_plan.c \
	bench/harness_plan.h \
	bench/harness_report.c \
	bench/harness_report.h \
	bench/harness_result.c \
	bench/harness_result.h \
	bench/harness_run.c \
	bench/harness_run.h \
	bench/harness_stats.c \
	bench/harness_stats.h \
	bench/harness_suite.c \
	bench/harness_suite.h \
	bench/harness_svg.c \
	bench/harness_svg.h \
	bench/harness_table.c \
	bench/harness_table.h

EXTRA_PROGRAMS = \
	$(bench_workload_programs) \
	$(bench_static_programs) \
	bench/hakmem-bench \
	bench/pager_probe \
	bench/page_costs

bench_workload_cflags = $(AM_CFLAGS) -fno-builtin-malloc -fno-builtin-calloc \
	-fno-builtin-realloc -fno-builtin-free
bench_static_cppflags = $(AM_CPPFLAGS) -DBENCH_STATIC_HAKMEM
bench_static_ldadd = lib/libhakmem.la $(LIBURING_LIBS) $(PTHREAD_LIBS)

bench_random_mixed_SOURCES = bench/random_mixed.c bench/workload.c bench/workload.h
bench_random_mixed_CFLAGS = $(bench_workload_cflags)
bench_random_mixed_LDADD = $(PTHREAD_LIBS)
bench_random_mixed_static_SOURCES = $(bench_random_mixed_SOURCES)
bench_random_mixed_static_CFLAGS = $(bench_workload_cflags)
bench_random_mixed_static_CPPFLAGS = $(bench_static_cppflags)
bench_random_mixed_static_LDADD = $(bench_static_ldadd)
bench_random_mixed_static_LDFLAGS = -static

bench_tiny_hot_SOURCES = bench/tiny_hot.c bench/workload.c bench/workload.h
bench_tiny_hot_CFLAGS = $(bench_workload_cflags)
bench_tiny_hot_LDADD = $(PTHREAD_LIBS)
bench_tiny_hot_static_SOURCES = $(bench_tiny_hot_SOURCES)
bench_tiny_hot_static_CFLAGS = $(bench_workload_cflags)
bench_tiny_hot_static_CPPFLAGS = $(bench_static_cppflags)
bench_tiny_hot_static_LDADD = $(bench_static_ldadd)
bench_tiny_hot_static_LDFLAGS = -static

bench_grow_SOURCES = bench/grow.c bench/workload.c bench/workload.h
bench_grow_CFLAGS = $(bench_workload_cflags)
bench_grow_LDADD = $(PTHREAD_LIBS)
bench_grow_static_SOURCES = $(bench_grow_SOURCES)
bench_grow_static_CFLAGS = $(bench_workload_cflags)
bench_grow_static_CPPFLAGS = $(bench_static_cppflags)
bench_grow_static_LDADD = $(bench_static_ldadd)
bench_grow_static_LDFLAGS = -static
# regrow: grow.c, pausing after each round (grow.c says why)
bench_regrow_defines = -DWORKLOAD='"regrow"' -DPAUSE_MS=150
bench_regrow_SOURCES = $(bench_grow_SOURCES)
bench_regrow_CPPFLAGS = $(AM_CPPFLAGS) $(bench_regrow_defines)
bench_regrow_CFLAGS = $(bench_workload_cflags)
bench_regrow_LDADD = $(PTHREAD_LIBS)
bench_regrow_static_SOURCES = $(bench_grow_SOURCES)
bench_regrow_static_CFLAGS = $(bench_workload_cflags)
bench_regrow_static_CPPFLAGS = $(bench_static_cppflags) $(bench_regrow_defines)
bench_regrow_static_LDADD = $(bench_static_ldadd)
bench_regrow_static_LDFLAGS = -static

bench_calloc_SOURCES = bench/calloc.c bench/workload.c bench/workload.h
bench_calloc_CFLAGS = $(bench_workload_cflags)
bench_calloc_LDADD = $(PTHREAD_LIBS)
bench_calloc_static_SOURCES = $(bench_calloc_SOURCES)
bench_calloc_static_CFLAGS = $(bench_workload_cflags)
bench_calloc_static_CPPFLAGS = $(bench_static_cppflags)
bench_calloc_static_LDADD = $(bench_static_ldadd)
bench_calloc_static_LDFLAGS = -static

bench_large_SOURCES = bench/large.c bench/workload.c bench/workload.h
bench_large_CFLAGS = $(bench_workload_cflags)
bench_large_LDADD = $(PTHREAD_LIBS)
bench_large_static_SOURCES = $(bench_large_SOURCES)
bench_large_static_CFLAGS = $(bench_workload_cflags)
bench_large_static_CPPFLAGS = $(bench_static_cppflags)
bench_large_static_LDADD = $(bench_static_ldadd)
bench_large_static_LDFLAGS = -static

bench_midsize_SOURCES = bench/midsize.c bench/workload.c bench/workload.h
bench_midsize_CFLAGS = $(bench_workload_cflags)
bench_midsize_LDADD = $(PTHREAD_LIBS)
bench_midsize_static_SOURCES = $(bench_midsize_SOURCES)
bench_midsize_static_CFLAGS = $(bench_workload_cflags)
bench_midsize_static_CPPFLAGS = $(bench_static_cppflags)
bench_midsize_static_LDADD = $(bench_static_ldadd)
bench_midsize_static_LDFLAGS = -static

bench_vector_SOURCES = bench/vector.c bench/workload.c bench/workload.h
bench_vector_CFLAGS = $(bench_workload_cflags)
bench_vector_LDADD = $(PTHREAD_LIBS)
bench_vector_static_SOURCES = $(bench_vector_SOURCES)
bench_vector_static_CFLAGS = $(bench_workload_cflags)
bench_vector_static_CPPFLAGS = $(bench_static_cppflags)
bench_vector_static_LDADD = $(bench_static_ldadd)
bench_vector_static_LDFLAGS = -static

bench_larson_SOURCES = bench/larson.c bench/workload.c bench/workload.h
bench_larson_CFLAGS = $(bench_workload_cflags)
bench_larson_LDADD = $(PTHREAD_LIBS)
bench_larson_static_SOURCES = $(bench_larson_SOURCES)
bench_larson_static_CFLAGS = $(bench_workload_cflags)
bench_larson_static_CPPFLAGS = $(bench_static_cppflags)
bench_larson_static_LDADD = $(bench_static_ldadd)
bench_larson_static_LDFLAGS = -static

bench_prodcons_SOURCES = bench/prodcons.c bench/workload.c bench/workload.h
bench_prodcons_CFLAGS = $(bench_workload_cflags)
bench_prodcons_LDADD = $(PTHREAD_LIBS)
bench_prodcons_static_SOURCES = $(bench_prodcons_SOURCES)
bench_prodcons_static_CFLAGS = $(bench_workload_cflags)
bench_prodcons_static_CPPFLAGS = $(bench_static_cppflags)
bench_prodcons_static_LDADD = $(bench_static_ldadd)
bench_prodcons_static_LDFLAGS = -static

bench_churn_SOURCES = bench/churn.c bench/workload.c bench/workload.h
bench_churn_CFLAGS = $(bench_workload_cflags)
bench_churn_LDADD = $(PTHREAD_LIBS)
bench_churn_static_SOURCES = $(bench_churn_SOURCES)
bench_churn_static_CFLAGS = $(bench_workload_cflags)
bench_churn_static_CPPFLAGS = $(bench_static_cppflags)
bench_churn_static_LDADD = $(bench_static_ldadd)
bench_churn_static_LDFLAGS = -static

bench_rebuild_SOURCES = bench/rebuild.c bench/workload.c bench/workload.h
bench_rebuild_CFLAGS = $(bench_workload_cflags)
bench_rebuild_LDADD = $(PTHREAD_LIBS)
bench_rebuild_static_SOURCES = $(bench_rebuild_SOURCES)
bench_rebuild_static_CFLAGS = $(bench_workload_cflags)
bench_rebuild_static_CPPFLAGS = $(bench_static_cppflags)
bench_rebuild_static_LDADD = $(bench_static_ldadd)
bench_rebuild_static_LDFLAGS = -static

bench_pager_probe_SOURCES = bench/pager_probe.c
bench_pager_probe_CFLAGS = $(bench_workload_cflags) # its malloc must not be folded away

bench_page_costs_SOURCES = bench/page_costs.c
if ENABLE_UFFD
bench_page_costs_SOURCES += pager/uffd.c pager/uffd.h
bench_page_costs_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/pager -DPAGE_COSTS_UFFD
endif

bench_hakmem_bench_SOURCES = bench/harness_main.c $(bench_harness_sources)
bench_hakmem_bench_LDADD = -lm

CLEANFILES += \
	$(bench_workload_programs:=$(EXEEXT)) \
	$(bench_static_programs:=$(EXEEXT)) \
	bench/hakmem-bench$(EXEEXT) \
	bench/pager_probe$(EXEEXT) \
	bench/page_costs$(EXEEXT) \
	bench-report/page-costs.txt \
	bench-report/report.md \
	bench-report/results.csv \
	bench-report/report.svg

bench_all_programs = \
	$(bench_workload_programs:=$(EXEEXT)) \
	$(bench_static_programs:=$(EXEEXT)) \
	bench/hakmem-bench$(EXEEXT) \
	bench/pager_probe$(EXEEXT) \
	bench/page_costs$(EXEEXT)
# What a page costs here, by path, beside the report: the figures that
# explain the fault paths' rows (bench/page_costs.c).
bench_page_costs_run = $(MKDIR_P) bench-report && \
	bench/page_costs$(EXEEXT) | tee bench-report/page-costs.txt
bench_run = bench/hakmem-bench$(EXEEXT) --bindir=bench --out=bench-report \
	--hakmem-so=lib/.libs/libhakmem.so

bench: lib/libhakmem.la $(bench_all_programs)
	$(bench_page_costs_run)
	$(bench_run) --full $(BENCH_ARGS)

bench-quick: lib/libhakmem.la $(bench_all_programs)
	$(bench_page_costs_run)
	$(bench_run) --quick $(BENCH_ARGS)

.PHONY: bench bench-quick
