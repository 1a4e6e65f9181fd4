/* rebuild: a search tree built, torn down and built again, as a compiler
 * or an interpreter builds and drops its structures.
 *
 * Each round inserts `nodes` nodes of 32..64 B with random keys into an
 * unbalanced binary search tree, and mallocs a 48 B list cell for every
 * other node; then it frees the tree in tree order (a rotation walk, no
 * stack) and the list from its head. The walks down the tree dominate: an
 * allocator that hands the next round's first nodes out from blocks freed
 * all over the heap puts the top of the tree, which every insertion
 * reads, on a page a node. Figure: ns per node, all rounds, mallocs,
 * insertions and frees. */
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define WORKLOAD "rebuild"

static struct bench_param params[] = {
    {"nodes", 500000, "tree nodes per round"},
    {"rounds", 3, "rounds of build then tear down"},
    {"seed", 42, "xorshift32 seed (not 0)"},
};
#define NPARAMS (sizeof params / sizeof params[0])

struct node {
  struct node *left, *right;
  uint64_t key;
};

struct cell {
  struct cell *next;
  char payload[40];
};

static struct node *tree_insert(struct node *root, struct node *n) {
  struct node **link = &root;
  while (*link)
    link = n->key < (*link)->key ? &(*link)->left : &(*link)->right;
  *link = n;
  return root;
}

/* Frees every node: a left child is rotated up until there is none, then
 * the node goes and its right subtree is next. */
static void tree_free(struct node *t) {
  while (t) {
    if (t->left) {
      struct node *l = t->left;
      t->left = l->right;
      l->right = t;
      t = l;
    } else {
      struct node *r = t->right;
      free(t);
      t = r;
    }
  }
}

static void round_build_and_free(uint64_t nodes, uint32_t *state) {
  struct node *root = NULL;
  struct cell *list = NULL;
  for (uint64_t i = 0; i < nodes; i++) {
    struct node *n = malloc(bench_uniform(state, 32, 64));
    if (n == NULL)
      bench_fail(WORKLOAD, "malloc returned NULL");
    n->left = n->right = NULL;
    uint64_t high = bench_xorshift32(state); /* two statements: the order of two calls in one is unspecified */
    n->key = high << 32 | bench_xorshift32(state);
    root = tree_insert(root, n);
    if (i % 2) {
      struct cell *c = malloc(sizeof *c);
      if (c == NULL)
        bench_fail(WORKLOAD, "malloc returned NULL");
      c->next = list;
      list = c;
    }
  }
  bench_sink += root->key;
  tree_free(root);
  while (list) {
    struct cell *next = list->next;
    free(list);
    list = next;
  }
}

int main(int argc, char **argv) {
  bench_parse_params(argc, argv, WORKLOAD, params, NPARAMS);
  uint64_t nodes = bench_param(params, NPARAMS, "nodes");
  uint64_t rounds = bench_param(params, NPARAMS, "rounds");
  uint32_t state = (uint32_t)bench_param(params, NPARAMS, "seed");
  if (state == 0 || nodes == 0 || rounds == 0)
    bench_fail(WORKLOAD, "need seed > 0, nodes > 0, rounds > 0");

  uint64_t start = bench_now_ns();
  for (uint64_t r = 0; r < rounds; r++)
    round_build_and_free(nodes, &state);
  double wall_s = (double)(bench_now_ns() - start) / 1e9;

  char extra[64];
  snprintf(extra, sizeof extra, " nodes=%llu rounds=%llu", (unsigned long long)nodes,
           (unsigned long long)rounds);
  bench_print_result(WORKLOAD, "ns_per_node", wall_s * 1e9 / (double)(nodes * rounds), 0, wall_s, extra);
  return 0;
}
