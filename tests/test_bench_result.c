/* Description: the harness's parsers: a workload's result line and
 * hakmem's HAKMEM_STATS=1 report with its page-supply ledger, in the
 * format lib/stats.c prints and in the key=value form the parser also
 * accepts. */
#include <criterion/criterion.h>
#include <string.h>

#include "harness_result.h"

static const char good_line[] =
    "result workload=grow metric=ns_per_page value=812.5 better=lower ns_per_page=812.5 "
    "wall_s=1.25 minflt=65600 majflt=0 maxrss_kb=270000 utime_s=0.5 stime_s=0.75 "
    "allocator=hakmem bytes_total=1342177280 pages=327680 rounds=5\n";

Test(result_line, parses_every_field) {
  struct run_result r;
  cr_assert_eq(result_parse_line(good_line, &r), 0);
  cr_expect_str_eq(r.workload, "grow");
  cr_expect_str_eq(r.metric, "ns_per_page");
  cr_expect_str_eq(r.allocator, "hakmem");
  cr_expect_not(r.higher_is_better);
  cr_expect_float_eq(r.value, 812.5, 1e-9);
  cr_expect_float_eq(r.pages, 327680, 1e-9);
  cr_expect_float_eq(r.wall_s, 1.25, 1e-9);
  cr_expect_float_eq(r.utime_s, 0.5, 1e-9);
  cr_expect_float_eq(r.stime_s, 0.75, 1e-9);
  cr_expect_eq(r.minflt, 65600);
  cr_expect_eq(r.majflt, 0);
  cr_expect_eq(r.maxrss_kb, 270000);
}

Test(result_line, higher_is_better_by_default) {
  struct run_result r;
  cr_assert_eq(result_parse_line("result workload=w metric=ops_per_s value=5e7", &r), 0);
  cr_expect(r.higher_is_better);
  cr_expect_float_eq(r.value, 5e7, 1);
}

Test(result_line, rejects_incomplete_or_foreign_lines) {
  struct run_result r;
  cr_expect_eq(result_parse_line("result workload=w metric=ops_per_s", &r), -1);
  cr_expect_eq(result_parse_line("result workload=w metric=m value=abc", &r), -1);
  cr_expect_eq(result_parse_line("results workload=w metric=m value=1", &r), -1);
  cr_expect_eq(result_parse_line("", &r), -1);
}

Test(result_output, takes_the_last_result_line_among_noise) {
  const char *out = "starting\nresult workload=a metric=m value=1\nnoise value=9\n"
                    "result workload=b metric=m value=2\ntrailing";
  struct run_result r;
  cr_assert_eq(result_parse_output(out, &r), 0);
  cr_expect_str_eq(r.workload, "b");
  cr_expect_float_eq(r.value, 2, 1e-9);
  cr_expect_eq(result_parse_output("nothing here\n", &r), -1);
}

/* What lib/stats.c prints at exit (hakmem_stats_print). */
static const char stats_sample[] =
    "hakmem 0.1.0: statistics of pid 4242\n"
    "hakmem: ss_live                           3  SuperSlabs in use\n"
    "hakmem: ss_cached                         1  SuperSlabs in the LRU cache\n"
    "hakmem: madvise_calls                    17  madvise calls\n"
    "hakmem: madvise_ns                   123456  time in madvise\n"
    "hakmem: minor_faults                  70000  minor page faults of the process (getrusage)\n"
    "hakmem: pager_zero_ns               5000000  time the pager spent zeroing\n"
    "hakmem: page-supply ledger      pages     events    wait_ms  ns/page  path\n"
    "hakmem: supply fresh             65536        128     95.250     1453  first touch of fresh "
    "kernel memory\n"
    "hakmem: supply refault            1024         16      1.500     1465  refault after lazy "
    "zeroing (MADV_DONTNEED)\n"
    "hakmem: supply uffd_move          2048          8      0.300      146  pager: UFFDIO_MOVE on "
    "a fault\n"
    "hakmem: supply total             68608                97.050\n"
    "hakmem: fault wait histogram (faulting thread, message to wake)\n"
    "hakmem: wait <       4096 ns          8\n";

Test(ledger, parses_the_report_of_lib_stats) {
  struct ledger l;
  ledger_parse(stats_sample, &l);
  cr_assert(l.present);
  cr_expect_str_eq(l.version, "0.1.0");
  cr_expect_eq(l.stats.ss_live, 3);
  cr_expect_eq(l.stats.madvise_calls, 17);
  cr_expect_eq(l.stats.madvise_ns, 123456);
  cr_expect_eq(l.stats.pager_zero_ns, 5000000);
  const struct hakmem_supply_row *fresh = &l.stats.supply[HAKMEM_SUPPLY_FRESH];
  cr_expect_eq(fresh->pages, 65536);
  cr_expect_eq(fresh->events, 128);
  cr_expect_eq(fresh->wait_ns, 95250000);
  cr_expect_eq(l.stats.supply[HAKMEM_SUPPLY_REFAULT].wait_ns, 1500000);
  cr_expect_eq(l.stats.supply[HAKMEM_SUPPLY_UFFD_MOVE].pages, 2048);
  cr_expect_eq(l.stats.supply[HAKMEM_SUPPLY_DIRECT].pages, 0);
  cr_expect_eq(ledger_total_pages(&l), 65536 + 1024 + 2048);
  cr_expect_eq(ledger_total_wait_ns(&l), 95250000 + 1500000 + 300000);
}

Test(ledger, accepts_key_value_rows_and_other_wait_units) {
  const char *text = "hakmem: supply path=direct pages=512 events=2 wait_us=40\n"
                     "hakmem: supply lazyfree 10 1 2000\n"
                     "hakmem: ledger pages events wait_ns\n"
                     "hakmem: supply reuse 30 3 900\n"
                     "hakmem: stats mmap_calls=9 mmap_ns=800\n";
  struct ledger l;
  ledger_parse(text, &l);
  cr_assert(l.present);
  cr_expect_eq(l.stats.supply[HAKMEM_SUPPLY_DIRECT].pages, 512);
  cr_expect_eq(l.stats.supply[HAKMEM_SUPPLY_DIRECT].wait_ns, 40000);
  /* before any header the wait column is in ms, as lib/stats.c prints it */
  cr_expect_eq(l.stats.supply[HAKMEM_SUPPLY_LAZYFREE].wait_ns, 2000000000ULL);
  cr_expect_eq(l.stats.supply[HAKMEM_SUPPLY_REUSE].wait_ns, 900);
  cr_expect_eq(l.stats.mmap_calls, 9);
  cr_expect_eq(l.stats.mmap_ns, 800);
}

Test(ledger, absent_without_a_report) {
  struct ledger l;
  ledger_parse("grow: something went wrong\nresult workload=grow metric=m value=1\n", &l);
  cr_expect_not(l.present);
  cr_expect_eq(ledger_total_pages(&l), 0);
  ledger_parse("", &l);
  cr_expect_not(l.present);
}

Test(ledger, path_names_follow_hakmem_h) {
  cr_expect_str_eq(ledger_path_name(HAKMEM_SUPPLY_FRESH), "fresh");
  cr_expect_str_eq(ledger_path_name(HAKMEM_SUPPLY_UFFD_MOVE), "uffd_move");
  cr_expect_str_eq(ledger_path_name(HAKMEM_SUPPLY_COUNT), "?");
}
