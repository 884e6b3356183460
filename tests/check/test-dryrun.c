/* test-dryrun.c — the recording backend (lib/dryrun) and its roofline.
 *
 *  - one DiT layer of the 14B model at 704x384 records exactly the closed-form
 *    GEMM and attention FLOPs of the config (8 linears, 2 attentions), and a
 *    steady-state step attends over sink + full ring (15 312 keys);
 *  - a dry run of the bench's tiny DiT (one step) and of a small VAE's
 *    streaming decode records the same compute-op sequence (names,
 *    dimensions, FLOPs) as a real CPU run executes, seen through the tracing
 *    wrapper, and the wrapper leaves the CPU result bit-identical;
 *  - allocation counters, host copies, and the roofline's arithmetic.
 */
#include <string.h>
#include "la-dit.h"
#include "la-vae.h"
#include "la-ops.h"
#include "la-synth.h"
#include "dryrun/la-dryrun.h"
#include "dryrun/la-roofline.h"

typedef struct {
  LaBackend *be;
  guint in[64], out[64];     /* op index at "blockN.in" / "blockN.out" */
} Marks;

static void
mark (const char *name, const LaTensor *t, gpointer user)
{
  Marks *m = user;
  int l;
  char tail[32];
  if (sscanf (name, "block%d.%31s", &l, tail) == 2 && l >= 0 && l < 64) {
    if (!strcmp (tail, "in"))
      m->in[l] = la_dryrun_n_ops (m->be);
    else if (!strcmp (tail, "out"))
      m->out[l] = la_dryrun_n_ops (m->be);
  }
}

static LaTensor *
host_rand (GRand *r, int ndim, const int64_t *shape)
{
  LaTensor *t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  for (gint64 i = 0; i < la_tensor_numel (t); i++)
    la_tensor_f32 (t)[i] = (float) g_rand_double_range (r, -1, 1);
  return t;
}

/* Shapes-only weights of cfg, bound as the published bf16 checkpoint would be. */
static LaDitModel *
zero_model (LaBackend *be, const LaDitConfig *c, LaCheckpoint **keep)
{
  gint64 saved = la_synth_zero_from;
  la_synth_zero_from = 0;
  *keep = la_dit_random_weights (c, 1);
  la_synth_zero_from = saved;
  la_dryrun_zero_weights (*keep, LA_DTYPE_BF16);
  LaWeightBinder wb;
  la_weight_binder_init (&wb, be, *keep, LA_WEIGHTS_FILE);
  GError *e = NULL;
  LaDitModel *m = la_dit_model_new_bound (c, &wb, &e);
  g_assert_no_error (e);
  return m;
}

typedef struct {
  LaDitSession *s;
  LaTensor *x, *audio;
} Rig;

static void
rig_new (Rig *rig, LaDitModel *m, const LaDitConfig *c, int h, int w, LaDitDumpFunc dump, gpointer user)
{
  LaDitSessionParams sp;
  la_dit_session_params_init (&sp, h, w);
  sp.fixed_d = 6;
  sp.dump = dump;
  sp.dump_user = user;
  g_autoptr (GRand) r = g_rand_new_with_seed (11);
  g_autoptr (LaTensor) ref = host_rand (r, 4, (int64_t[]) { c->in_dim, 1, h, w });
  g_autoptr (LaTensor) mot = host_rand (r, 4, (int64_t[]) { c->in_dim, 19, h, w });
  g_autoptr (LaTensor) ctx = host_rand (r, 2, (int64_t[]) { 8, c->text_dim });
  GError *e = NULL;
  rig->s = la_dit_session_new (m, &sp, ref, mot, ctx, &e);
  g_assert_no_error (e);
  rig->x = host_rand (r, 4, (int64_t[]) { c->in_dim, 3, h, w });
  rig->audio = host_rand (r, 3, (int64_t[]) { 25, c->audio_dim, 12 });
}

static void
rig_free (Rig *rig)
{
  la_dit_session_free (rig->s);
  la_tensor_unref (rig->x);
  la_tensor_unref (rig->audio);
}

static void
test_layer_flops_14b (void)
{
  LaDitConfig c;
  la_dit_config_init_14b (&c);
  LaBackend *be = la_backend_dryrun_new ();
  LaCheckpoint *ck;
  LaDitModel *m = zero_model (be, &c, &ck);
  Marks mk = { be };
  Rig rig;
  const int h = 48, w = 88;                 /* 704x384 */
  rig_new (&rig, m, &c, h, w, mark, &mk);
  /* frame 12 = block 4: the first block whose ring is full */
  guint first = la_dryrun_n_ops (be);
  GError *e = NULL;
  g_assert_true (la_dit_session_denoise_step (rig.s, 0, rig.x, rig.audio, 12, 6, &e));
  g_assert_no_error (e);
  guint last = la_dryrun_n_ops (be);

  const double D = c.dim, Fd = c.ffn_dim, L = 3.0 * (h / 2) * (w / 2);
  const double Nc = (h / 2) * (w / 2) + (h / 2) * (w / 2) + 1 * (h / 4) * (w / 4) + 4 * (h / 8) * (w / 8);
  const double ring = 12 * (h / 2) * (w / 2);
  g_assert_cmpfloat (Nc + ring, ==, 15312);
  for (int l = 0; l < c.num_layers; l++) {
    g_assert_cmpuint (mk.in[l], >=, first);
    g_assert_cmpuint (mk.out[l], >, mk.in[l]);
    double gemm = 0, attn = 0;
    int n_lin = 0, n_attn = 0;
    for (guint i = mk.in[l]; i < mk.out[l]; i++) {
      const LaDryOp *o = la_dryrun_op (be, i);
      if (!strcmp (o->op, "linear")) {
        n_lin++;
        gemm += o->flops;
        g_assert_true (o->fp8_eligible);    /* every block linear is one of the 460 */
        g_assert_cmpint (o->dt_w, ==, LA_DTYPE_BF16);
      } else if (o->cls == LA_DRY_ATTENTION) {
        n_attn++;
        attn += o->flops;
      }
    }
    g_assert_cmpint (n_lin, ==, 8);         /* self q k v o, cross q o, ffn 0 2 */
    g_assert_cmpint (n_attn, ==, 2);
    /* self q,k,v,o and cross q,o: 6·D² per token; FFN 2·D·ffn */
    g_assert_cmpfloat (gemm, ==, 2 * L * (6 * D * D + 2 * D * Fd));
    g_assert_cmpfloat (attn, ==, 4 * L * D * (Nc + ring) + 4 * L * D * c.text_len);
  }
  /* per step: self + text attention per layer, audio attention per injector and latent frame */
  int n_attn = 0;
  for (guint i = first; i < last; i++)
    n_attn += la_dryrun_op (be, i)->cls == LA_DRY_ATTENTION;
  g_assert_cmpint (n_attn, ==, 2 * c.num_layers + 3 * c.n_inject);

  /* Block 0 (ring filling): self-attention reads Nc + L keys, a count the
   * session uploads into device memory (attention_n) and the dry run prices
   * from the host bytes of that upload. */
  first = la_dryrun_n_ops (be);
  g_assert_true (la_dit_session_denoise_step (rig.s, 0, rig.x, rig.audio, 0, 6, &e));
  g_assert_no_error (e);
  last = la_dryrun_n_ops (be);
  int n_self = 0;
  for (guint i = first; i < last; i++) {
    const LaDryOp *o = la_dryrun_op (be, i);
    if (strcmp (o->op, "attention_n"))
      continue;
    n_self++;
    g_assert_cmpint (o->dims[1], ==, (gint64) (Nc + L));
    g_assert_cmpfloat (o->flops, ==, 4 * L * D * (Nc + L));
  }
  g_assert_cmpint (n_self, ==, c.num_layers);
  rig_free (&rig);
  la_dit_model_free (m);
  la_checkpoint_unref (ck);
  la_backend_unref (be);
}

static gboolean
is_compute (const LaDryOp *o)
{
  return o->cls != LA_DRY_COPY_H2D && o->cls != LA_DRY_COPY_D2H && o->cls != LA_DRY_COPY_D2D &&
         o->cls != LA_DRY_COPY_H2H && o->cls != LA_DRY_SYNC;
}

/* liveavatar-bench's tiny preset (dim 96, 3 heads, 3 layers, 128x64 pixels). */
static void
tiny_config (LaDitConfig *c)
{
  la_dit_config_init_14b (c);
  c->dim = 96; c->num_heads = 3; c->num_layers = 3; c->ffn_dim = 192;
  c->text_dim = 32; c->audio_dim = 32; c->text_len = 16;
  c->n_inject = 2; c->audio_inject_layers[0] = 0; c->audio_inject_layers[1] = 2;
}

/* Compute ops of [a0, a1) on A and [b0, b1) on B agree one to one (copies and
 * syncs may differ: a device backend uploads what the CPU reads in place);
 * returns the number compared, counting linears in *n_linear. */
static guint
same_compute_ops (LaBackend *A, guint a0, guint a1, LaBackend *B, guint b0, guint b1, guint *n_linear)
{
  guint i = a0, j = b0, n = 0;
  *n_linear = 0;
  for (;; i++, j++) {
    while (i < a1 && !is_compute (la_dryrun_op (A, i)))
      i++;
    while (j < b1 && !is_compute (la_dryrun_op (B, j)))
      j++;
    if (i == a1 || j == b1)
      break;
    const LaDryOp *a = la_dryrun_op (A, i), *b = la_dryrun_op (B, j);
    if (strcmp (a->op, b->op) || memcmp (a->dims, b->dims, sizeof a->dims) || a->flops != b->flops)
      g_error ("compute op %u differs: cpu %s [%" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT
               "], dry run %s [%" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT "]", n,
               a->op, a->dims[0], a->dims[1], a->dims[2], b->op, b->dims[0], b->dims[1], b->dims[2]);
    n++;
    *n_linear += !strcmp (a->op, "linear");
  }
  g_assert_cmpuint (i, ==, a1);     /* neither sequence has ops left over */
  g_assert_cmpuint (j, ==, b1);
  return n;
}

static void
test_same_sequence_as_cpu (void)
{
  LaDitConfig c;
  tiny_config (&c);
  const int h = 8, w = 16;
  g_autoptr (LaCheckpoint) wts = la_dit_random_weights (&c, 3);
  GError *e = NULL;

  /* the real run, recorded */
  LaBackend *cpu = la_backend_cpu_new (1);
  LaBackend *tr = la_backend_dryrun_new_tracing (cpu);
  LaDitModel *mt = la_dit_model_new (tr, &c, wts, &e);
  g_assert_no_error (e);
  Rig rt;
  rig_new (&rt, mt, &c, h, w, NULL, NULL);
  guint t0 = la_dryrun_n_ops (tr);
  g_assert_true (la_dit_session_denoise_step (rt.s, 1, rt.x, rt.audio, 0, 6, &e));
  g_assert_no_error (e);
  guint t1 = la_dryrun_n_ops (tr);

  /* the same run on the CPU alone: tracing changes nothing */
  LaDitModel *mc = la_dit_model_new (cpu, &c, wts, &e);
  g_assert_no_error (e);
  Rig rc;
  rig_new (&rc, mc, &c, h, w, NULL, NULL);
  g_assert_true (la_dit_session_denoise_step (rc.s, 1, rc.x, rc.audio, 0, 6, &e));
  g_assert_no_error (e);
  g_assert_cmpint (memcmp (rc.x->data, rt.x->data, la_tensor_nbytes (rc.x)), ==, 0);

  /* the dry run */
  LaBackend *dry = la_backend_dryrun_new ();
  LaCheckpoint *ck;
  LaDitModel *md = zero_model (dry, &c, &ck);
  Rig rd;
  rig_new (&rd, md, &c, h, w, NULL, NULL);
  guint d0 = la_dryrun_n_ops (dry);
  g_assert_true (la_dit_session_denoise_step (rd.s, 1, rd.x, rd.audio, 0, 6, &e));
  g_assert_no_error (e);
  guint d1 = la_dryrun_n_ops (dry);

  guint n_linear;
  guint n = same_compute_ops (tr, t0, t1, dry, d0, d1, &n_linear);
  /* 8 per layer, 4 per injector + AdaIN, plus the step's own (patch embedding, time MLP, head,
   * today also the audio encoder's final linear: where those run may move, so no upper bound) */
  g_assert_cmpuint (n_linear, >=, 8 * c.num_layers + 5 * c.n_inject + 3);
  g_assert_cmpuint (n, >, 100);

  rig_free (&rt);
  rig_free (&rc);
  rig_free (&rd);
  la_dit_model_free (mt);
  la_dit_model_free (mc);
  la_dit_model_free (md);
  la_checkpoint_unref (ck);
  la_backend_unref (tr);
  la_backend_unref (cpu);
  la_backend_unref (dry);
}

/* The VAE's streaming decode (priming, a first block, a steady block) on the
 * CPU through the tracing wrapper and on the dry run. */
static guint
vae_run (LaBackend *be, LaCheckpoint *ck, const LaVaeConfig *vc, guint *first)
{
  GError *e = NULL;
  LaVae *vae = la_vae_new (be, ck, vc, &e);
  g_assert_no_error (e);
  LaVaeDecoder *dec = la_vae_decoder_new (vae);
  g_autoptr (GRand) r = g_rand_new_with_seed (2);
  g_autoptr (LaTensor) mot = host_rand (r, 4, (int64_t[]) { vc->z_dim, 7, 8, 8 });
  g_autoptr (LaTensor) blk = host_rand (r, 4, (int64_t[]) { vc->z_dim, 3, 8, 8 });
  g_autoptr (LaTensor) dmot = la_alloc (be, LA_DTYPE_F32, 4, mot->shape);
  g_autoptr (LaTensor) dblk = la_alloc (be, LA_DTYPE_F32, 4, blk->shape);
  *first = la_dryrun_n_ops (be);
  la_copy (be, dmot, mot);
  la_copy (be, dblk, blk);
  g_assert_true (la_vae_decoder_prime (dec, dmot, 7, &e));
  for (int b = 0; b < 2; b++) {
    LaTensor *px = la_vae_decoder_decode_block (dec, dblk, b ? 0 : 3, &e);
    g_assert_no_error (e);
    g_assert_cmpint (px->shape[1], ==, b ? 12 : 9);
    la_tensor_unref (px);
  }
  g_assert_true (la_backend_sync (be, &e));
  guint last = la_dryrun_n_ops (be);
  la_vae_decoder_free (dec);
  la_vae_free (vae);
  return last;
}

static void
test_vae_same_sequence (void)
{
  LaVaeConfig vc;
  la_vae_config_wan21 (&vc);
  vc.dim = 8;
  g_autoptr (LaCheckpoint) ck = la_vae_random_weights (&vc, 4);
  LaBackend *cpu = la_backend_cpu_new (1);
  LaBackend *tr = la_backend_dryrun_new_tracing (cpu);
  LaBackend *dry = la_backend_dryrun_new ();
  guint t0, d0;
  guint t1 = vae_run (tr, ck, &vc, &t0);
  guint d1 = vae_run (dry, ck, &vc, &d0);
  guint n_linear;
  guint n = same_compute_ops (tr, t0, t1, dry, d0, d1, &n_linear);
  guint n_conv = 0;
  for (guint i = d0; i < d1; i++)
    n_conv += !strcmp (la_dryrun_op (dry, i)->op, "conv3d");
  g_assert_cmpuint (n_conv, >, 100);
  g_assert_cmpuint (n, >, n_conv);
  la_backend_unref (tr);
  la_backend_unref (cpu);
  la_backend_unref (dry);
}

static void
test_memory_and_copies (void)
{
  LaBackend *be = la_backend_dryrun_new ();
  LaDryMem m;
  LaTensor *a = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { 1000, 1000 });
  LaTensor *b = la_alloc (be, LA_DTYPE_BF16, 1, (int64_t[]) { 500 });
  g_assert_cmpint (a->device, ==, LA_DEVICE_CUDA);
  la_dryrun_mem (be, &m);
  g_assert_cmpuint (m.live, ==, 4000000 + 1000);
  g_assert_cmpuint (m.live_f32, ==, 1000000);
  la_tensor_unref (a);
  la_dryrun_mem (be, &m);
  g_assert_cmpuint (m.live, ==, 1000);
  g_assert_cmpuint (m.peak, ==, 4001000);
  la_dryrun_reset_peak (be);
  la_dryrun_mem (be, &m);
  g_assert_cmpuint (m.peak, ==, 1000);

  /* host -> host is performed (model code reads it), device -> host leaves dst alone */
  g_autoptr (LaTensor) h1 = la_tensor_new_v (LA_DTYPE_F32, 500, -1);
  g_autoptr (LaTensor) h2 = la_tensor_new_v (LA_DTYPE_F32, 500, -1);
  for (int i = 0; i < 500; i++)
    la_tensor_f32 (h1)[i] = i;
  guint n0 = la_dryrun_n_ops (be);
  la_copy (be, h2, h1);
  g_assert_cmpfloat (la_tensor_f32 (h2)[499], ==, 499);
  la_copy (be, b, h1);
  la_copy (be, h1, b);
  g_assert_cmpfloat (la_tensor_f32 (h1)[7], ==, 7);
  g_assert_cmpint (la_dryrun_op (be, n0)->cls, ==, LA_DRY_COPY_H2H);
  g_assert_cmpint (la_dryrun_op (be, n0 + 1)->cls, ==, LA_DRY_COPY_H2D);
  g_assert_cmpint (la_dryrun_op (be, n0 + 2)->cls, ==, LA_DRY_COPY_D2H);
  GError *e = NULL;
  g_assert_true (la_backend_sync (be, &e));
  g_assert_cmpint (la_dryrun_op (be, n0 + 3)->cls, ==, LA_DRY_SYNC);
  la_tensor_unref (b);
  la_dryrun_mem (be, &m);
  g_assert_cmpuint (m.live, ==, 0);
  la_backend_unref (be);
}

static void
test_roofline (void)
{
  LaBackend *be = la_backend_dryrun_new ();
  const int M = 3168, N = 5120, K = 5120;
  LaTensor *x = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { M, K });
  LaTensor *y = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { M, N });
  LaTensor *wt = la_alloc (be, LA_DTYPE_BF16, 2, (int64_t[]) { N, K });
  LaTensor *v = la_alloc (be, LA_DTYPE_F32, 1, (int64_t[]) { (gint64) M * N });
  la_linear (be, y, x, wt, NULL);                 /* compute-bound */
  la_unary (be, LA_UNARY_SILU, v, v);             /* memory-bound */
  LaRoofline rl;
  la_roofline_init_h100_sxm (&rl);
  LaRoofSum s;
  la_roofline_sum (&rl, be, 0, 2, &s);
  const double flops = 2.0 * M * N * K;
  g_assert_cmpfloat (s.flops[LA_DRY_GEMM], ==, flops);
  g_assert_cmpfloat_with_epsilon (s.t_eager[LA_DRY_GEMM], flops / 989e12 + 5e-6, 1e-12);
  g_assert_cmpfloat_with_epsilon (s.t_graph[LA_DRY_GEMM], flops / 989e12 + 1e-6, 1e-12);
  g_assert_cmpuint (s.n_bound_compute[LA_DRY_GEMM], ==, 1);
  /* bf16 activations: x and y at 2 bytes, the bf16 weight as is */
  g_assert_cmpfloat (s.bytes[LA_DRY_GEMM], ==, 2.0 * M * K + 2.0 * M * N + 2.0 * N * K);
  const double vb = 2 * 2.0 * M * N;              /* read + write, bf16 */
  g_assert_cmpfloat (s.bytes[LA_DRY_ELEMENTWISE], ==, vb);
  g_assert_cmpfloat_with_epsilon (s.t_eager[LA_DRY_ELEMENTWISE], vb / 3.35e12 + 5e-6, 1e-12);
  g_assert_cmpuint (s.n_bound_compute[LA_DRY_ELEMENTWISE], ==, 0);
  /* as recorded (f32), and FP8: the weight at one byte; not eligible without a name */
  rl.act_bytes = 0;
  rl.fp8 = TRUE;
  la_roofline_sum (&rl, be, 0, 1, &s);
  g_assert_cmpfloat (s.bytes[LA_DRY_GEMM], ==, 4.0 * M * K + 4.0 * M * N + 2.0 * N * K);
  g_assert_cmpfloat (s.fp8_flops, ==, 0);
  la_tensor_set_name (wt, "blocks.0.ffn.2.weight");
  la_linear (be, y, x, wt, NULL);
  la_roofline_sum (&rl, be, 2, 3, &s);
  g_assert_cmpfloat (s.fp8_flops, ==, flops);
  /* x at one byte in the GEMM, plus its quantisation: amax reads x (f32), quantise reads x, writes e4m3 */
  const double q = 9.0 * M * K;
  g_assert_cmpfloat (s.bytes[LA_DRY_GEMM], ==, 1.0 * M * K + 4.0 * M * N + 1.0 * N * K + q);
  g_assert_cmpfloat_with_epsilon (s.t_work[LA_DRY_GEMM], flops / 1979e12 + q / 3.35e12, 1e-12);
  g_assert_cmpfloat_with_epsilon (s.t_eager[LA_DRY_GEMM], flops / 1979e12 + q / 3.35e12 + 4 * 5e-6, 1e-12);
  g_assert_cmpuint (s.n_launch, ==, 4);
  la_tensor_unref (x);
  la_tensor_unref (y);
  la_tensor_unref (wt);
  la_tensor_unref (v);
  la_backend_unref (be);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dryrun/memory-and-copies", test_memory_and_copies);
  g_test_add_func ("/dryrun/roofline", test_roofline);
  g_test_add_func ("/dryrun/same-sequence-as-cpu", test_same_sequence_as_cpu);
  g_test_add_func ("/dryrun/vae-same-sequence-as-cpu", test_vae_same_sequence);
  g_test_add_func ("/dryrun/layer-flops-14b", test_layer_flops_14b);
  return g_test_run ();
}
