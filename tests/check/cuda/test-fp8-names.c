/* test-fp8-names.c — runs everywhere: la_cuda_fp8_eligible picks exactly the
 * 460 linears of docs/design/model.md §2.3 from the real Wan2.2-S2V key layout (40 blocks, 12
 * audio injectors) and none of the excluded or non-Linear tensors. */
#include "liveavatar/la-cuda.h"
#include <stdio.h>

int
main (void)
{
  int n = 0, bad = 0;
  char name[128];
  static const char *bt[] = { "self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "cross_attn.q",
                              "cross_attn.k", "cross_attn.v", "cross_attn.o", "ffn.0", "ffn.2" };
  for (int b = 0; b < 40; b++)
    for (size_t i = 0; i < G_N_ELEMENTS (bt); i++) {
      g_snprintf (name, sizeof name, "blocks.%d.%s.weight", b, bt[i]);
      n += la_cuda_fp8_eligible (name, 2);
      g_snprintf (name, sizeof name, "blocks.%d.%s.bias", b, bt[i]);
      bad += la_cuda_fp8_eligible (name, 1);
    }
  for (int j = 0; j < 12; j++) {
    static const char *it[] = { "q", "k", "v", "o" };
    for (int i = 0; i < 4; i++) {
      g_snprintf (name, sizeof name, "audio_injector.injector.%d.%s.weight", j, it[i]);
      n += la_cuda_fp8_eligible (name, 2);
    }
    g_snprintf (name, sizeof name, "audio_injector.injector_adain_layers.%d.linear.weight", j);
    n += la_cuda_fp8_eligible (name, 2);
    g_snprintf (name, sizeof name, "audio_injector.injector.%d.norm_q.weight", j);
    bad += la_cuda_fp8_eligible (name, 1);
  }
  static const char *no[] = {
    "text_embedding.0.weight", "text_embedding.2.weight", "time_embedding.0.weight", "time_projection.1.weight",
    "head.head.weight", "casual_audio_encoder.encoder.final_linear.weight", "patch_embedding.weight",
    "blocks.0.modulation", "blocks.3.norm3.weight", "blocks.1.self_attn.norm_q.weight", "blocks.x.ffn.0.weight",
    "blocks.0.ffn.1.weight", "blocks.0.self_attn.q.weightx", "xblocks.0.ffn.0.weight", "cond_encoder.weight",
    "frame_packer.proj.weight", "", NULL,
  };
  for (size_t i = 0; i < G_N_ELEMENTS (no); i++)
    bad += la_cuda_fp8_eligible (no[i], 2);
  bad += la_cuda_fp8_eligible ("blocks.0.ffn.0.weight", 5);     /* not 2-D */
  printf ("%s: %d eligible (want 460), %d wrongly eligible\n", n == 460 && !bad ? "pass" : "FAIL", n, bad);
  return n == 460 && !bad ? 0 : 1;
}
