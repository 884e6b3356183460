/* test-cuda-table.c — runs on any machine (no GPU needed): every op of
 * LaBackendOps that the CPU reference implements is implemented by the CUDA
 * backend too, so an op added to la-backend-impl.h without a CUDA version fails
 * here instead of crashing on a GPU.  Skips (77) when the build has no CUDA. */
#include "liveavatar/liveavatar.h"
#include "liveavatar/la-cuda.h"
#include "la-backend-impl.h"
#include <stdio.h>
#include <string.h>

int
main (void)
{
  const LaBackendOps *cuda = la_cuda_ops_table ();
  if (!cuda) {
    printf ("SKIP: no CUDA backend in this build\n");
    return 77;
  }
  LaBackend *cpu = la_backend_cpu_new (1);
  /* The table is a name followed by function pointers only. */
  const size_t first = offsetof (LaBackendOps, alloc);
  const size_t n = (sizeof (LaBackendOps) - first) / sizeof (void (*) (void));
  int missing = 0;
  for (size_t i = 0; i < n; i++) {
    void (*c) (void), (*g) (void);
    memcpy (&c, (const char *) cpu->ops + first + i * sizeof c, sizeof c);
    memcpy (&g, (const char *) cuda + first + i * sizeof g, sizeof g);
    if (c && !g) {
      printf ("FAIL: op slot %zu of LaBackendOps has a CPU implementation but none on CUDA\n", i);
      missing++;
    }
  }
  printf ("%s: %zu op slots, %d missing on CUDA, name '%s'\n", missing ? "FAIL" : "pass", n, missing, cuda->name);
  la_backend_unref (cpu);
  return missing ? 1 : 0;
}
