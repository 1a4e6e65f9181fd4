/* harness_svg.c: a hand-written SVG grouped bar chart (see harness_svg.h).
 * One panel per comparison: groups are workloads, bars configurations,
 * heights ratios, with the baseline drawn as a dashed line at 1. */
#include "harness_svg.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define WIDTH 1100
#define PANEL_HEIGHT 360
#define LEFT 60
#define RIGHT 20
#define TOP 56
#define BOTTOM 70

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759",
                                      "#9c2f2f", "#76b7b2", "#edc948", "#ff9da7", "#9c755f",
                                      "#bab0ac", "#17becf"};

/* A configuration keeps its colour in both panels. */
static const char *color(size_t config) {
  return palette[config % (sizeof palette / sizeof palette[0])];
}

enum panel_kind { PANEL_ALLOCATORS, PANEL_FAULT_PATHS };

struct panel {
  enum panel_kind kind;
  int y;             /* top of the panel */
  const char *title, *baseline;
  size_t groups[16]; /* workload indices (into the table) */
  size_t ngroups;
  size_t bars[16]; /* configuration indices */
  size_t nbars;
  double ymax;
};

static bool in_panel(const struct suite *s, enum panel_kind kind, size_t c) {
  return kind == PANEL_ALLOCATORS ? s->configs[c].role != ROLE_FAULT_PATH : s->configs[c].hakmem;
}

static double bar_value(const struct table *t, enum panel_kind kind, size_t w, size_t c) {
  const struct cell *cell = table_cell(t, w, c);
  return kind == PANEL_ALLOCATORS ? cell->vs_best_peer : cell->vs_hakmem;
}

/* Pick the workloads and configurations that have something to show. */
static void panel_fill(const struct suite *s, const struct table *t, struct panel *p) {
  p->ymax = 1.2;
  for (size_t c = 0; c < s->nconfigs && p->nbars < 16; c++)
    if (in_panel(s, p->kind, c))
      p->bars[p->nbars++] = c;
  for (size_t w = 0; w < t->nworkloads && p->ngroups < 16; w++) {
    bool any = false;
    for (size_t b = 0; b < p->nbars; b++) {
      double v = bar_value(t, p->kind, w, p->bars[b]);
      any |= v > 0 && (p->kind == PANEL_ALLOCATORS || p->bars[b] != (size_t)t->w[w].hakmem);
      if (v * 1.15 > p->ymax)
        p->ymax = v * 1.15;
    }
    if (any && (p->kind == PANEL_ALLOCATORS || workload_defs[s->workloads[w]].fault_heavy))
      p->groups[p->ngroups++] = w;
  }
}

static double y_of(const struct panel *p, double v) {
  double plot = PANEL_HEIGHT - TOP - BOTTOM;
  if (v > p->ymax)
    v = p->ymax;
  return p->y + TOP + plot * (1 - v / p->ymax);
}

static void axes(FILE *f, const struct panel *p) {
  double step = p->ymax > 4 ? 1 : p->ymax > 2 ? 0.5 : 0.25;
  fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"title\">%s</text>\n", LEFT, p->y + 22, p->title);
  for (double v = 0; v <= p->ymax + 1e-9; v += step) {
    double y = y_of(p, v);
    fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>\n", LEFT, y,
            WIDTH - RIGHT, y);
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"tick\">%.2f</text>\n", LEFT - 6, y + 4, v);
  }
  double y1 = y_of(p, 1.0);
  fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"base\"/>\n", LEFT, y1,
          WIDTH - RIGHT, y1);
  fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"note\">dashed line: 1.00 = %s</text>\n", LEFT,
          p->y + 40, p->baseline);
}

static void bars(FILE *f, const struct suite *s, const struct table *t, const struct panel *p) {
  double group_w = (double)(WIDTH - LEFT - RIGHT) / (double)(p->ngroups ? p->ngroups : 1);
  double bar_w = group_w * 0.8 / (double)(p->nbars ? p->nbars : 1);
  for (size_t g = 0; g < p->ngroups; g++) {
    size_t w = p->groups[g];
    double x0 = LEFT + group_w * (double)g + group_w * 0.1;
    for (size_t b = 0; b < p->nbars; b++) {
      double v = bar_value(t, p->kind, w, p->bars[b]);
      if (v <= 0)
        continue;
      double x = x0 + bar_w * (double)b, y = y_of(p, v), base = y_of(p, 0);
      fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                 "<title>%s %s: %.2fx</title></rect>\n",
              x, y, bar_w * 0.92, base - y, color(p->bars[b]), workload_defs[s->workloads[w]].name,
              s->configs[p->bars[b]].name, v);
      fprintf(f, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" class=\"value\">%.2f</text>\n",
              x + bar_w * 0.46 + 3, y - 3, v);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"group\">%s</text>\n", x0 + group_w * 0.4,
            p->y + PANEL_HEIGHT - BOTTOM + 16, workload_defs[s->workloads[w]].name);
  }
}

static void legend(FILE *f, const struct suite *s, const struct panel *p) {
  int x = LEFT, y = p->y + PANEL_HEIGHT - 28;
  for (size_t b = 0; b < p->nbars; b++) {
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>", x, y - 10,
            color(p->bars[b]));
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"legend\">%s</text>\n", x + 16, y,
            s->configs[p->bars[b]].name);
    x += 26 + 8 * (int)strlen(s->configs[p->bars[b]].name);
  }
}

static int draw_panel(FILE *f, const struct suite *s, const struct table *t, struct panel *p) {
  panel_fill(s, t, p);
  if (p->ngroups == 0)
    return 0;
  axes(f, p);
  bars(f, s, t, p);
  legend(f, s, p);
  return PANEL_HEIGHT;
}

static void header(FILE *f, int height, const struct suite *s) {
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
             "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
          WIDTH, height, WIDTH, height);
  fprintf(f, "<style>.title{font-size:15px;font-weight:bold}.tick{font-size:11px;text-anchor:end}"
             ".grid{stroke:#ddd}.base{stroke:#333;stroke-dasharray:5,4}"
             ".value{font-size:9px}"
             ".group{font-size:12px;text-anchor:middle}.legend{font-size:12px}"
             ".note{font-size:11px;fill:#555}</style>\n");
  fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"note\">hakmem-bench %s, %d runs per bar, medians; "
             "%s, %ld cores, %s, THP %s</text>\n",
          LEFT, 16, mode_name(s->opt.mode), s->opt.reps, s->machine.cpu, s->machine.cores,
          s->machine.kernel, s->machine.thp);
}

int svg_write(const struct suite *s, const struct table *t, const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  struct panel alloc = {.kind = PANEL_ALLOCATORS,
                        .y = 20,
                        .title = "Speed relative to the best peer (higher is faster)",
                        .baseline = "best of glibc, mimalloc, jemalloc, tcmalloc"};
  struct panel fault = {.kind = PANEL_FAULT_PATHS,
                        .title = "hakmem fault paths: speed relative to hakmem defaults "
                                 "(higher is faster)",
                        .baseline = "hakmem, default options"};
  /* Fill both first: the canvas height depends on what is drawn. */
  struct panel probe_a = alloc, probe_f = fault;
  panel_fill(s, t, &probe_a);
  panel_fill(s, t, &probe_f);
  int height = 30 + (probe_a.ngroups ? PANEL_HEIGHT : 0) + (probe_f.ngroups ? PANEL_HEIGHT : 0);
  header(f, height, s);
  fault.y = alloc.y + draw_panel(f, s, t, &alloc);
  draw_panel(f, s, t, &fault);
  fprintf(f, "</svg>\n");
  return fclose(f) == 0 ? 0 : -1;
}
