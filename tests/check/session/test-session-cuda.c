/* The whole session on CUDA devices (devices=cuda:N), tiny generated model:
 *
 *  - f32 weights: the frames of cuda:0 equal the CPU's within a few 8-bit
 *    levels (the same f32 arithmetic in another summation order); FP8
 *    weights within a looser, stated bound;
 *  - bf16 weights: close to the CPU's bf16 frames (on the device the
 *    activations are rounded to the GEMM's type too);
 *  - TPP over two GPUs (NCCL) and two stages sharing one GPU: bit for bit
 *    the frames of cuda:0 alone;
 *  - a stage worker on a GPU behind a CPU head (tcp://);
 *  - the device-plan errors: a malformed list, fp8 on the CPU.
 *
 * Runs where CUDA devices exist: a GPU, or the emulated device of the
 * -Dcuda-emu=enabled build (LA_EMU_DEVICES of them), where every kernel is
 * interpreted on the CPU — hence the 64x64 frames and one clip.  Elsewhere
 * those cases skip and only the device-list errors run. */
#include <liveavatar/liveavatar.h>
#include <liveavatar/la-cuda.h>
#include <liveavatar/la-tpp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *model_dir;

typedef struct {
  int n, w, h;
  guint8 **rgb;
} Frames;

static void
frames_clear (Frames *f)
{
  for (int i = 0; i < f->n; i++)
    g_free (f->rgb[i]);
  g_free (f->rgb);
  memset (f, 0, sizeof *f);
}

static LaSession *
new_session (const char *devices, LaWeights weights, GError **error)
{
  static guint8 img[64 * 64 * 3];
  for (int i = 0; i < 64 * 64; i++) {
    img[3 * i] = (guint8) (i % 64 * 4);
    img[3 * i + 1] = (guint8) (i / 64 * 4);
    img[3 * i + 2] = (guint8) (i * 7);
  }
  LaSessionParams p;
  la_session_params_init (&p);
  p.model_dir = model_dir;
  p.lora = model_dir;
  p.ref_rgb = img;
  p.ref_width = p.ref_height = 64;
  p.ref_stride = 64 * 3;
  p.prompt = "a person talking";
  p.max_area = 64 * 64;
  p.sink_offset = 10;
  p.audio_mode = LA_AUDIO_OFFLINE;
  p.n_threads = 1;
  p.devices = devices;
  p.weights = weights;
  return la_session_new (&p, error);
}

/* One block's worth of audio (0.8 s: 21 frames, the first block drops 3). */
static Frames
render (const char *devices, LaWeights weights)
{
  GError *e = NULL;
  LaSession *s = new_session (devices, weights, &e);
  g_assert_no_error (e);
  Frames f = { 0 };
  la_session_get_size (s, &f.w, &f.h);
  gsize n = 12800;
  g_autofree float *pcm = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    pcm[i] = 0.3f * sinf ((float) i * 0.05f) * sinf ((float) i * 0.0007f);
  g_assert_true (la_session_push_audio (s, pcm, n, &e));
  la_session_end_of_stream (s);
  LaFrame *fr;
  while ((fr = la_session_pull_frame (s, -1, &e))) {
    f.rgb = g_renew (guint8 *, f.rgb, f.n + 1);
    f.rgb[f.n++] = g_memdup2 (fr->rgb, (gsize) f.w * f.h * 3);
    la_frame_unref (fr);
  }
  g_assert_no_error (e);
  LaSessionStats st;
  la_session_get_stats (s, &st);
  g_assert_cmpuint (st.weight_bytes, >, 0);
  la_session_free (s);
  g_assert_cmpint (f.n, ==, 21);
  return f;
}

/* Largest and mean absolute difference of two renders, in 8-bit levels. */
static void
compare (const Frames *a, const Frames *b, int *max_diff, double *mean_diff)
{
  g_assert_cmpint (a->n, ==, b->n);
  g_assert_cmpint (a->w, ==, b->w);
  gsize px = (gsize) a->w * a->h * 3;
  double sum = 0;
  int mx = 0;
  for (int i = 0; i < a->n; i++)
    for (gsize k = 0; k < px; k++) {
      int d = abs ((int) a->rgb[i][k] - (int) b->rgb[i][k]);
      mx = MAX (mx, d);
      sum += d;
    }
  *max_diff = mx;
  *mean_diff = sum / (px * a->n);
}

static gboolean
have_devices (int n)
{
  if (la_cuda_device_count () >= n)
    return TRUE;
  g_test_skip ("not enough CUDA devices (a GPU or the emulated device)");
  return FALSE;
}

/* f32 weights against the CPU; FP8 (the DiT's eligible linears) against
 * the same CPU frames with a looser bound. */
static void
test_f32_fp8 (void)
{
  if (!have_devices (1))
    return;
  Frames cpu = render ("cpu", LA_WEIGHTS_F32), gpu = render ("cuda:0", LA_WEIGHTS_F32);
  int mx;
  double mean;
  compare (&cpu, &gpu, &mx, &mean);
  g_print ("# f32 weights: cuda:0 vs cpu: max %d, mean %.4f levels\n", mx, mean);
  g_assert_cmpint (mx, <=, 2);          /* measured on the emulated device: max 1, mean 1e-4 */
  g_assert_cmpfloat (mean, <, 0.01);
  frames_clear (&gpu);
  Frames fp8 = render ("cuda:0", LA_WEIGHTS_FP8);
  compare (&cpu, &fp8, &mx, &mean);
  g_print ("# fp8 weights on cuda:0 vs f32 on cpu: max %d, mean %.4f levels\n", mx, mean);
  g_assert_cmpfloat (mean, <, 2.0);     /* measured: mean 0.56, max 10 */
  frames_clear (&cpu);
  frames_clear (&fp8);
}

/* bf16 weights against the CPU's bf16; then TPP over two GPUs (NCCL) and
 * two stages sharing one GPU, bit for bit cuda:0 alone. */
static void
test_bf16_tpp (void)
{
  if (!have_devices (2))
    return;
  Frames cpu = render ("cpu", LA_WEIGHTS_BF16), one = render ("cuda:0", LA_WEIGHTS_BF16);
  int mx;
  double mean;
  compare (&cpu, &one, &mx, &mean);
  g_print ("# bf16 weights: cuda:0 vs cpu: max %d, mean %.4f levels\n", mx, mean);
  g_assert_cmpint (mx, <=, 8);          /* measured: max 1, mean 0.04 */
  g_assert_cmpfloat (mean, <, 0.5);
  frames_clear (&cpu);
  const char *lists[] = { "cuda:0,cuda:1", "cuda:0,cuda:0" };
  for (guint i = 0; i < G_N_ELEMENTS (lists); i++) {
    Frames two = render (lists[i], LA_WEIGHTS_BF16);
    gsize px = (gsize) one.w * one.h * 3;
    for (int k = 0; k < one.n; k++)
      if (memcmp (one.rgb[k], two.rgb[k], px))
        g_error ("devices %s: frame %d differs from cuda:0 alone", lists[i], k);
    g_print ("# devices %s: %d frames bit-identical to cuda:0\n", lists[i], one.n);
    frames_clear (&two);
  }
  frames_clear (&one);
}

/* A stage worker on a GPU (la_tpp_worker_open on "cuda:0", as
 * liveavatar-stage --device cuda:0): steps 2-3 there, steps 0-1 and the VAE
 * on this CPU, f32 weights: the CPU's frames within the f32 bound. */
static void
test_worker (void)
{
  if (!have_devices (1))
    return;
  GError *e = NULL;
  LaTppWorker *w = la_tpp_worker_open (model_dir, model_dir, LA_WEIGHTS_F32, "cuda:0", 1, "127.0.0.1:0", &e);
  g_assert_no_error (e);
  la_tpp_worker_start (w, 1, NULL, NULL);
  g_autofree char *devs = g_strdup_printf ("cpu,%s", la_tpp_worker_get_address (w));
  Frames cpu = render ("cpu", LA_WEIGHTS_F32), mixed = render (devs, LA_WEIGHTS_F32);
  int mx;
  double mean;
  compare (&cpu, &mixed, &mx, &mean);
  g_print ("# devices %s (the worker on cuda:0) vs cpu, f32 weights: max %d, mean %.4f levels\n", devs, mx, mean);
  g_assert_cmpint (mx, <=, 2);
  g_assert_cmpfloat (mean, <, 0.01);
  frames_clear (&cpu);
  frames_clear (&mixed);
  la_tpp_worker_free (w);
  /* a worker device that is not one */
  g_assert_null (la_tpp_worker_open (model_dir, model_dir, LA_WEIGHTS_F32, "gpu0", 1, "127.0.0.1:0", &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_assert_nonnull (strstr (e->message, "gpu0"));
  g_clear_error (&e);
}

static void
test_bad_devices (void)
{
  const char *bad[] = { "cuda:0,cpu", "cuda:x", "gpu", "cuda:0,tcp://h:1" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    GError *e = NULL;
    g_assert_null (new_session (bad[i], LA_WEIGHTS_FILE, &e));
    g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
    g_assert_nonnull (strstr (e->message, bad[i]));
    g_clear_error (&e);
  }
  GError *e = NULL;
  g_assert_null (new_session ("cpu", LA_WEIGHTS_FP8, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_assert_nonnull (strstr (e->message, "fp8"));
  g_clear_error (&e);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  const char *mk = g_getenv ("LA_MKMODEL");
  g_autofree char *tmp = g_dir_make_tmp ("la-session-cuda-XXXXXX", NULL);
  model_dir = g_build_filename (tmp, "tiny", NULL);
  g_autofree char *cmd = g_strdup_printf ("'%s' --preset tiny --seed 3 --out '%s' >/dev/null 2>&1", mk ? mk : "liveavatar-mkmodel", model_dir);
  if (system (cmd) != 0)
    g_error ("could not generate the tiny model (%s)", cmd);
  g_test_add_func ("/session-cuda/bad-devices", test_bad_devices);
  g_test_add_func ("/session-cuda/f32-fp8", test_f32_fp8);
  g_test_add_func ("/session-cuda/bf16-tpp", test_bf16_tpp);
  g_test_add_func ("/session-cuda/worker", test_worker);
  int r = g_test_run ();
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", tmp);
  (void) !system (rm);
  g_free (model_dir);
  return r;
}
