/* harness_csv.c: results.csv (see harness_csv.h). */
#include "harness_csv.h"

#include <inttypes.h>
#include <string.h>

void csv_field(FILE *f, const char *text) {
  if (strpbrk(text, ",\"\r\n") == NULL) {
    fputs(text, f);
    return;
  }
  fputc('"', f);
  for (const char *p = text; *p; p++) {
    if (*p == '"')
      fputc('"', f);
    fputc(*p, f);
  }
  fputc('"', f);
}

static void header(FILE *f) {
  fputs("mode,workload,config,rep,ok,metric,better,value,wall_s,utime_s,stime_s,minflt,majflt,"
        "maxrss_kb,allocator,pages",
        f);
  for (int p = 0; p < HAKMEM_SUPPLY_COUNT; p++)
    fprintf(f, ",%s_pages,%s_events,%s_wait_ns", ledger_path_name(p), ledger_path_name(p),
            ledger_path_name(p));
  fputs(",pager_zero_pages,pager_zero_ns,madvise_calls,madvise_ns,mmap_calls,mmap_ns,"
        "pager_refill_pages,pager_refill_ns,error\n",
        f);
}

static void row(FILE *f, const struct suite *s, const struct measurement *m) {
  const struct run_result *r = &m->result;
  const struct hakmem_stats *st = &m->ledger.stats;
  fprintf(f, "%s,%s,%s,%d,%d,%s,%s,%.6g,%.6f,%.6f,%.6f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%s,%.0f",
          mode_name(s->opt.mode), workload_defs[m->workload].name, s->configs[m->config].name,
          m->rep + 1, m->ok, r->metric, r->higher_is_better ? "higher" : "lower", r->value,
          r->wall_s, r->utime_s, r->stime_s, r->minflt, r->majflt, r->maxrss_kb, r->allocator,
          r->pages);
  for (int p = 0; p < HAKMEM_SUPPLY_COUNT; p++)
    fprintf(f, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64, st->supply[p].pages, st->supply[p].events,
            st->supply[p].wait_ns);
  fprintf(f, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",",
          st->pager_zero_pages, st->pager_zero_ns, st->madvise_calls, st->madvise_ns,
          st->mmap_calls, st->mmap_ns, st->pager_refill_pages, st->pager_refill_ns);
  csv_field(f, m->error);
  fputc('\n', f);
}

int csv_write(const struct suite *s, const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  header(f);
  for (size_t i = 0; i < s->nm; i++)
    row(f, s, &s->m[i]);
  return fclose(f) == 0 ? 0 : -1;
}
