/* What one atomic read-modify-write costs on this machine, next to a plain
 * add, on a line in cache and on lines spread over a working set larger
 * than the L2: the figure `bench/instructions.sh --locked` counts are
 * weighed with (callgrind counts a `lock add` as one instruction).
 *
 * Each step does the same filler work (a chain of multiplies, so a plain
 * access can overlap it) and one add to a line picked at random from the
 * working set: plain, then `lock`-prefixed. Best of three runs each.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define STEPS 2000000

struct line { long v; char pad[56]; };

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline long filler(long x) {
  for (int k = 0; k < 8; k++) {
    x = x * 6364136223846793005L + 1442695040888963407L;
    __asm__ volatile("" : "+r"(x));
  }
  return x;
}

static double run(struct line *a, const uint32_t *idx, int locked, long *acc) {
  uint64_t t0 = now_ns();
  for (int i = 0; i < STEPS; i++) {
    if (locked)
      __atomic_fetch_add(&a[idx[i]].v, 1, __ATOMIC_SEQ_CST);
    else
      a[idx[i]].v += 1;
    __asm__ volatile("" ::: "memory");
    *acc = filler(*acc);
  }
  return (double)(now_ns() - t0) / STEPS;
}

int main(void) {
  size_t sizes[] = {1 << 10, 1 << 16, 1 << 20}; /* 64 KiB, 4 MiB, 64 MiB */
  uint32_t *idx = malloc(sizeof(uint32_t) * STEPS);
  long acc = 1;
  printf("| working set | plain add, ns a step | locked add, ns a step | difference |\n|---|---|---|---|\n");
  for (int s = 0; s < 3; s++) {
    size_t n = sizes[s];
    struct line *a = aligned_alloc(64, n * sizeof(struct line));
    if (!a || !idx) return 1;
    for (size_t i = 0; i < n; i++) a[i].v = (long)i;
    uint32_t x = 12345;
    for (int i = 0; i < STEPS; i++) { x = x * 1664525u + 1013904223u; idx[i] = x % n; }
    double plain = 1e9, locked = 1e9;
    for (int r = 0; r < 3; r++) {
      double p = run(a, idx, 0, &acc), l = run(a, idx, 1, &acc);
      if (p < plain) plain = p;
      if (l < locked) locked = l;
    }
    printf("| %zu KiB | %.1f | %.1f | %+.1f ns |\n", n * 64 / 1024, plain, locked, locked - plain);
    free(a);
  }
  /* A chain of adds to one line, nothing else: the bare price. */
  static volatile long one;
  double plain = 1e9, locked = 1e9;
  for (int r = 0; r < 3; r++) {
    uint64_t t0 = now_ns();
    for (int i = 0; i < STEPS * 10; i++) one = one + 1;
    uint64_t t1 = now_ns();
    for (int i = 0; i < STEPS * 10; i++) __atomic_fetch_add(&one, 1, __ATOMIC_SEQ_CST);
    uint64_t t2 = now_ns();
    double p = (double)(t1 - t0) / (STEPS * 10), l = (double)(t2 - t1) / (STEPS * 10);
    if (p < plain) plain = p;
    if (l < locked) locked = l;
  }
  printf("| one line, back to back | %.1f | %.1f | %+.1f ns |\n", plain, locked, locked - plain);
  return (int)(acc & 0) ;
}
