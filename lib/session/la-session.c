/* la-session.c — the streaming loop of docs/design/streaming.md §3 on engine threads.
 *
 * One engine thread per session owns the per-stream state (DiT caches,
 * decoder caches, live audio windows) and runs, per block of 12 frames:
 *
 *   audio window -> wav2vec2 -> 4 Euler steps of the DiT (4 KV caches)
 *   -> streaming VAE decode -> RGB frames -> output queue
 *
 * The caller's threads only touch the two queues under `lock`: PCM in
 * (bounded, block or drop-oldest) and frames out (bounded, so a slow
 * consumer throttles generation instead of growing memory).
 */
#include "liveavatar/la-session.h"
#include "la-model-bundle.h"
#include "la-noise.h"
#include "liveavatar/la-tpp.h"
#include "la-device.h"
#include "la-ops.h"
#include "la-tpp-pipeline.h"
#include <string.h>
#include <stdlib.h>

#define MOTION_FRAMES 73            /* pixel frames of the motion clip (docs/design/vae.md §8) */
#define PRIME_LATENTS 7             /* decoder priming with the first motion latents (docs/design/vae.md §5) */
#define FIRST_DROP 3                /* frames the first block of a stream drops */
/* Blocks the pipeline can hold between la_tpp_push and their frames: stages,
 * queues and the VAE, far fewer than this (the frame queue throttles it). */
#define INFLIGHT_RING 64
#define MAX_QUEUED_FRAMES 48
#define SAMPLES_PER_FRAME (LA_SESSION_SAMPLE_RATE / LA_SESSION_FPS)

/* `frames` whole frames of audio were dropped just before the engine's
 * `pos`-th sample: every frame made from audio at or after pos moves that
 * many frames later on the time line. */
typedef struct { gint64 pos, frames; } Skip;

struct _LaSession {
  LaSessionParams p;
  gint device_frames;              /* LaDeviceFrames, atomic: la_session_set_device_frames */
  char *prompt;
  LaBackend *be;
  LaModelBundle *m;
  int width, height, lat_h, lat_w, z_dim, lat_per_block, blocks_per_clip;
  LaTensor *ref_lat, *mot_lat, *ctx;
  LaTensor *swap_ref, *swap_mot;    /* a new reference waiting for the next block (under lock) */
  GBytes *ref_frame;                /* the last reference, resized and cropped to W x H (under lock) */
  gint64 swapped_at;                /* block of this stream where the reference was swapped, -1: none */

  int n_stages;                     /* devices listed: one TPP pipeline stage each */
  char **stage_devices;             /* the list: "cpu", "tcp://HOST:PORT" (a stage worker) or "cuda:N" */
  /* CUDA: one model bundle per GPU used (its backend is the bundle's), the
   * DiT on the GPUs of DiT stages, the rest on the output GPU (s->m). */
  int n_gpus;
  int gpu_ordinal[LA_TPP_MAX_STAGES];
  LaModelBundle *gpu_model[LA_TPP_MAX_STAGES];
  int stage_gpu[LA_TPP_MAX_STAGES];   /* devices entry -> gpu index, -1: not used by the plan */

  /* Per stream, owned by the engine thread (with TPP, the decoder and the
   * frame counters belong to the pipeline's output thread). */
  LaTpp *tpp;
  LaVaeDecoder *dec;
  LaAudioLive *live;
  GArray *offline_pcm;
  gint64 block;
  gint64 frame_index;               /* next frame out (output thread) */
  gint64 next_frame_index;          /* first frame of the next block queued (engine thread) */
  /* Per block in flight, by block % INFLIGHT_RING: its first frame index
   * (live skips move it on) and when it was queued.  The output thread
   * reads the slot of the block it emits, written before la_tpp_push. */
  gint64 inflight_first[INFLIGHT_RING];
  gint64 inflight_queued_us[INFLIGHT_RING];
  float *noise_clip;                /* [z, lat_per_clip, h, w] of the current clip */
  gint64 noise_clip_index;
  gint64 t_first_block_us;

  GMutex lock;
  GCond cond;
  GArray *pending;                  /* queued PCM (f32) */
  gint64 consumed;                  /* samples the engine has taken from `pending` */
  GArray *skips;                    /* Skip: audio dropped (live, queue full) */
  GQueue frames;
  gboolean eos, quit, interrupted, drained;
  gboolean touched;                 /* the current stream has been given audio or EOS */
  GError *error;
  GThread *thread;
  LaSessionStats stats;
  gsize max_pending;
  LaSessionDeadlineFunc deadline_func;  /* live scheduling (set before streaming) */
  gpointer deadline_data;
};

void
la_session_params_init (LaSessionParams *p)
{
  memset (p, 0, sizeof *p);
  p->max_area = 720 * 400;
  p->seed = 420;
  p->sink_refresh = TRUE;
  p->audio_mode = LA_AUDIO_LIVE;
  p->lookahead_ms = 400;
  p->context_ms = 4000;
  p->queue_policy = LA_QUEUE_BLOCK;
  p->max_queue_ms = 2000;
  p->devices = "cpu";
}

LaFrame *
la_frame_ref (LaFrame *f)
{
  g_atomic_int_inc (&f->ref_count);
  return f;
}

void
la_frame_unref (LaFrame *f)
{
  if (f && g_atomic_int_dec_and_test (&f->ref_count)) {
    g_free (f->rgb);
    if (f->device_owner)
      la_tensor_unref (f->device_owner);
    g_free (f);
  }
}

/* A model's output (on the session's backend) as a host f32 tensor. */
static LaTensor *
host_f32 (LaSession *s, LaTensor *t, GError **error)
{
  if (t->device == LA_DEVICE_CPU)
    return la_tensor_as_f32 (t);
  LaTensor *h = la_tensor_new (LA_DTYPE_F32, t->ndim, t->shape);
  la_copy (s->be, h, t);
  if (!la_backend_sync (s->be, error))
    g_clear_pointer (&h, la_tensor_unref);
  return h;
}

/* ---- per-stream state ---- */

static void
stream_free (LaSession *s)
{
  /* Not g_clear_pointer: that clears s->tpp before la_tpp_free joins the
   * output thread, whose last tpp_output may still read it. */
  if (s->tpp) {
    la_tpp_free (s->tpp);
    s->tpp = NULL;
  }
  g_clear_pointer (&s->dec, la_vae_decoder_free);
  g_clear_pointer (&s->live, la_audio_live_free);
  g_clear_pointer (&s->offline_pcm, g_array_unref);
  g_clear_pointer (&s->noise_clip, g_free);
}

static gboolean emit_block (LaSession *s, gint64 block, const LaTensor *lat, GError **error);

static gboolean
tpp_output (gint64 block, const LaTensor *clean, gpointer user, GError **error)
{
  LaSession *s = user;
  g_mutex_lock (&s->lock);
  s->stats.ms_dit = la_tpp_get_block_dit_ms (s->tpp);
  g_mutex_unlock (&s->lock);
  return emit_block (s, block, clean, error);
}

/* Takes a pending reference swap (engine thread or reset); TRUE if there was one. */
static gboolean
take_swap (LaSession *s)
{
  g_mutex_lock (&s->lock);
  LaTensor *r = g_steal_pointer (&s->swap_ref), *m = g_steal_pointer (&s->swap_mot);
  if (r)
    s->stats.reference_swaps++;
  g_mutex_unlock (&s->lock);
  if (!r)
    return FALSE;
  la_tensor_unref (s->ref_lat);
  la_tensor_unref (s->mot_lat);
  s->ref_lat = r;
  s->mot_lat = m;
  return TRUE;
}

/* A devices entry naming a stage worker: "tcp://HOST:PORT". */
static gboolean
is_worker (const char *dev)
{
  return g_str_has_prefix (dev, "tcp://") && strchr (dev + 6, ':');
}

static gboolean
stream_new (LaSession *s, GError **error)
{
  take_swap (s);                    /* a new stream simply starts from the new reference */
  s->swapped_at = -1;
  LaDitSessionParams dp;
  la_dit_session_params_init (&dp, s->lat_h, s->lat_w);
  dp.fixed_d = s->p.sink_offset;
  dp.d_seed = s->p.seed;
  /* Rolling sink (docs/design/streaming.md §4.3): from clip 1 on, the sink is the stream's first latent. */
  dp.refresh_sink_at_clip1 = s->p.sink_refresh;
  /* On GPUs the KV caches and the DiT's linear activations are bf16 (half of
   * the largest allocation, half the activation traffic; the official model
   * runs them bf16 too), except with f32 weights, the reference-precision
   * setting. */
  dp.cache_dtype = s->n_gpus && s->p.weights != LA_WEIGHTS_F32 ? LA_DTYPE_BF16 : LA_DTYPE_F32;
  dp.act_dtype = dp.cache_dtype;
  s->lat_per_block = dp.frames_per_block;
  s->blocks_per_clip = dp.infer_frames / (4 * dp.frames_per_block);
  s->dec = la_vae_decoder_new (s->m->vae);
  if (!la_vae_decoder_prime (s->dec, s->mot_lat, PRIME_LATENTS, error))
    return FALSE;
  if (s->p.audio_mode == LA_AUDIO_LIVE) {
    LaAudioLiveConfig lc;
    la_audio_live_config_init (&lc);
    lc.past_ms = s->p.context_ms;
    lc.lookahead_ms = s->p.lookahead_ms;
    lc.block_frames = 4 * s->lat_per_block;
    if (!(s->live = la_audio_live_new (s->m->w2v, &lc, error)))
      return FALSE;
  } else
    s->offline_pcm = g_array_new (FALSE, FALSE, sizeof (float));
  /* One DiT path: the steps always run as a TPP pipeline, a single stage
   * for one device (bit-identical to the sequential 4-cache loop, la-tpp.h),
   * as whisper.cpp schedules even one backend.  CPU stages are threads
   * sharing the one CPU-bound model; the steps of a "tcp://" device run in
   * that stage worker process. */
  LaTppConfig cfg;
  la_tpp_config_init (&cfg);
  cfg.n_devices = s->n_stages;
  cfg.model_digest = s->m->dit ? s->m->dit_digest : NULL;
  for (int i = 0; i < s->n_stages; i++) {
    gboolean remote = is_worker (s->stage_devices[i]);
    cfg.devices[i].model = remote ? NULL : s->m->dit;
    cfg.devices[i].remote = remote ? s->stage_devices[i] : NULL;
    if (s->n_gpus) {
      int g = s->stage_gpu[i];
      cfg.devices[i].name = s->stage_devices[i];
      cfg.devices[i].model = g >= 0 ? s->gpu_model[g]->dit : NULL;
      cfg.devices[i].cuda_device = g >= 0 ? s->gpu_ordinal[g] : 0;
    }
  }
  /* One GPU per device: the latent crosses between GPUs through NCCL.
   * Several stages on one GPU share its backend (one stream, one copy of
   * the weights) and hand the latent over in process. */
  if (s->n_gpus > 1 && s->n_gpus == MIN (s->n_stages, 5))
    cfg.transport = LA_TPP_TRANSPORT_NCCL;
  cfg.output = tpp_output;
  cfg.output_user = s;
  if (!(s->tpp = la_tpp_new (&cfg, &dp, s->ref_lat, s->mot_lat, s->ctx, error)))
    return FALSE;
  s->block = 0;
  s->frame_index = 0;
  s->next_frame_index = 0;
  s->noise_clip_index = -1;
  return TRUE;
}

/* ---- one block ---- */

static LaTensor *
block_noise (LaSession *s)
{
  gint64 clip = s->block / s->blocks_per_clip, b = s->block % s->blocks_per_clip;
  gsize plane = (gsize) s->lat_h * s->lat_w, per_clip = (gsize) s->blocks_per_clip * s->lat_per_block;
  if (clip != s->noise_clip_index) {
    /* One draw per clip, as the reference (seed + clip), so chunking never changes it. */
    g_free (s->noise_clip);
    s->noise_clip = g_new (float, (gsize) s->z_dim * per_clip * plane);
    la_noise_fill (s->noise_clip, (gsize) s->z_dim * per_clip * plane, s->p.seed, (guint64) clip);
    s->noise_clip_index = clip;
  }
  LaTensor *x = la_tensor_new_v (LA_DTYPE_F32, s->z_dim, s->lat_per_block, s->lat_h, s->lat_w, -1);
  for (int c = 0; c < s->z_dim; c++)
    memcpy (la_tensor_f32 (x) + (gsize) c * s->lat_per_block * plane,
            s->noise_clip + ((gsize) c * per_clip + (gsize) b * s->lat_per_block) * plane,
            (gsize) s->lat_per_block * plane * sizeof (float));
  return x;
}

/* Clean latents [z, F, h, w] of block `block` -> frames into the output
 * queue (with TPP this runs on the pipeline's output thread, in block order). */
static gboolean
emit_block (LaSession *s, gint64 block, const LaTensor *lat, GError **error)
{
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (LaTensor) px = la_vae_decoder_decode_block (s->dec, lat, block == 0 ? FIRST_DROP : 0, error);
  if (!px)
    return FALSE;
  g_autofree guint8 *rgb = NULL;
  g_autoptr (LaTensor) dev = NULL;       /* the block's device frames */
  const LaDeviceFrames kind = (LaDeviceFrames) g_atomic_int_get (&s->device_frames);
  if (kind != LA_DEVICE_FRAMES_OFF) {
    /* On the output GPU; synchronised once per block, so a frame is
     * complete when another stream or context reads it. */
    int64_t shape[4] = { px->shape[1], px->shape[2], px->shape[3], 4 };
    dev = la_alloc (s->be, LA_DTYPE_U8, 4, shape);
    if (dev)
      la_frames_to_rgba8 (s->be, dev, px);
    if (dev && kind != LA_DEVICE_FRAMES_RGBA) {
      int64_t nv[3] = { px->shape[1], px->shape[2] * 3 / 2, px->shape[3] };
      LaTensor *nv12 = la_alloc (s->be, LA_DTYPE_U8, 3, nv);
      if (nv12)
        la_rgba8_to_nv12 (s->be, nv12, dev, kind == LA_DEVICE_FRAMES_NV12_BT709);
      la_tensor_unref (dev);
      dev = nv12;
    }
    if (!dev || !la_backend_sync (s->be, error)) {
      if (!dev)
        g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "device frames: cannot allocate a block's frames");
      return FALSE;
    }
  } else if (!(rgb = la_vae_frames_to_rgb8 (s->be, px, error)))
    return FALSE;
  gint64 now = g_get_monotonic_time ();
  int F = (int) px->shape[1];
  gsize frame_bytes = (gsize) s->width * s->height * 3;
  g_mutex_lock (&s->lock);
  /* A slow consumer throttles generation; shutting down never waits. */
  while (!s->quit && g_queue_get_length (&s->frames) >= MAX_QUEUED_FRAMES)
    g_cond_wait (&s->cond, &s->lock);
  s->frame_index = s->inflight_first[block % INFLIGHT_RING];
  for (int f = 0; f < F && !s->quit; f++) {
    LaFrame *fr = g_new0 (LaFrame, 1);
    fr->ref_count = 1;
    fr->width = s->width;
    fr->height = s->height;
    fr->stride = 3 * s->width;
    if (dev) {
      const gsize W = s->width, H = s->height;
      fr->device_format = kind;
      fr->device_index = dev->device_index;
      fr->device_owner = la_tensor_ref (dev);
      if (kind == LA_DEVICE_FRAMES_RGBA) {
        fr->device_data[0] = (guint8 *) dev->data + f * W * H * 4;
        fr->device_pitch[0] = 4 * W;
      } else {
        fr->device_data[0] = (guint8 *) dev->data + f * W * H * 3 / 2;
        fr->device_data[1] = (guint8 *) fr->device_data[0] + W * H;
        fr->device_pitch[0] = fr->device_pitch[1] = W;
      }
    } else {
      fr->rgb = g_memdup2 (rgb + f * frame_bytes, frame_bytes);
    }
    fr->index = s->frame_index++;
    /* Generated frame g (the first block drops FIRST_DROP) starts at sample g * 640. */
    gint64 g = fr->index + FIRST_DROP, shift = 0;
    for (guint i = 0; i < s->skips->len; i++)
      if (g_array_index (s->skips, Skip, i).pos <= g * SAMPLES_PER_FRAME)
        shift += g_array_index (s->skips, Skip, i).frames;
    fr->pts_ns = (fr->index + shift + (s->p.keep_av_lead ? 0 : FIRST_DROP)) * (G_TIME_SPAN_SECOND / LA_SESSION_FPS) * 1000;
    g_queue_push_tail (&s->frames, fr);
    s->stats.frames_out++;
  }
  s->stats.ms_vae = (now - t0) / 1000.0;
  /* The skip decision's block time: from queuing the block (its audio
   * features included) to its frames, pipeline waits and all, smoothed so
   * one slow block does not cause a skip by itself. */
  double ms = (now - s->inflight_queued_us[block % INFLIGHT_RING]) / 1000.0 + s->stats.ms_audio;
  s->stats.ms_block_avg = s->stats.ms_block_avg > 0 ? 0.75 * s->stats.ms_block_avg + 0.25 * ms : ms;
  s->stats.blocks_done = block + 1;
  s->stats.sink_from_stream = s->p.sink_refresh && block >= s->blocks_per_clip &&
                              (s->swapped_at < 0 || block < s->swapped_at);
  if (now > s->t_first_block_us)
    s->stats.fps = s->stats.frames_out / ((now - s->t_first_block_us) / 1e6);
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
  return TRUE;
}

/* Queues the 4 denoising steps of the next block on the TPP pipeline. */
static gboolean
generate_block (LaSession *s, LaTensor *audio, GError **error)
{
  gint64 t0 = g_get_monotonic_time ();
  if (s->block == 0)
    s->t_first_block_us = t0;
  g_autoptr (LaTensor) noise = block_noise (s);
  gint64 block = s->block++;
  gboolean swap = take_swap (s);
  if (swap) {
    g_mutex_lock (&s->lock);
    s->swapped_at = block;
    g_mutex_unlock (&s->lock);
  }
  /* After a swap before clip 1, the clip-1 refresh must not bring back a
   * latent of the old reference: the sink stays the new image. */
  gboolean keep_new_sink = !swap && s->swapped_at >= 0 && s->p.sink_refresh && block == s->blocks_per_clip;
  s->inflight_first[block % INFLIGHT_RING] = s->next_frame_index;
  s->inflight_queued_us[block % INFLIGHT_RING] = t0;
  s->next_frame_index += LA_SESSION_FRAMES_PER_BLOCK - (block == 0 ? FIRST_DROP : 0);
  LaTppBlock b = { .noise = noise, .audio = audio };
  if (swap || keep_new_sink) {
    b.refresh = TRUE;
    b.refresh_ref = s->ref_lat;
    b.refresh_motion = swap ? s->mot_lat : NULL;
  }
  /* Queues the block; emit_block runs on the pipeline's output thread. */
  if (!la_tpp_push (s->tpp, &b, error))
    return FALSE;
  g_mutex_lock (&s->lock);
  s->stats.ms_block = (g_get_monotonic_time () - t0) / 1000.0;
  g_mutex_unlock (&s->lock);
  return TRUE;
}

/* Live scheduling (la_session_set_deadline_func): TRUE when the block just
 * popped should be skipped because it cannot be on time and a newer one is
 * queued.  Skipping it moves the later frames 12 frames on (their index
 * jumps), as its audio was consumed. */
static gboolean
skip_stale_block (LaSession *s, gsize chunk)
{
  if (!s->deadline_func || s->block == 0)
    return FALSE;
  g_mutex_lock (&s->lock);
  gint64 g = s->next_frame_index + FIRST_DROP, shift = 0;
  for (guint i = 0; i < s->skips->len; i++)
    if (g_array_index (s->skips, Skip, i).pos <= g * SAMPLES_PER_FRAME)
      shift += g_array_index (s->skips, Skip, i).frames;
  gint64 pts_ns = (s->next_frame_index + shift + (s->p.keep_av_lead ? 0 : FIRST_DROP)) *
                  (G_TIME_SPAN_SECOND / LA_SESSION_FPS) * 1000;
  g_mutex_unlock (&s->lock);
  /* Asked first: the queue and the block time are read after the answer. */
  gint64 left = s->deadline_func (pts_ns, s->deadline_data);
  g_mutex_lock (&s->lock);
  gsize queued = s->pending->len;
  double est_ms = s->stats.ms_block_avg;
  g_mutex_unlock (&s->lock);
  if (est_ms <= 0)
    return FALSE;
  /* This block and the whole ones queued behind it; the next one comes in
   * real time.  Same rule as the element's timeline (one block at a time:
   * the loop asks again for the next). */
  gint64 complete = 1 + (gint64) (queued / chunk);
  gint64 wait_ns = (gint64) ((chunk - queued % chunk) * (G_GINT64_CONSTANT (1000000000) / LA_SESSION_SAMPLE_RATE));
  gint64 est_ns = (gint64) (est_ms * 1e6), block_ns = (gint64) LA_SESSION_FRAMES_PER_BLOCK * 40000000;
  /* Generate this one when it fits, or when it is the newest and the next
   * would not fit either; otherwise a later one does better. */
  if (left >= est_ns || (complete == 1 && left + block_ns - wait_ns < est_ns))
    return FALSE;
  g_mutex_lock (&s->lock);
  s->next_frame_index += LA_SESSION_FRAMES_PER_BLOCK;
  s->stats.blocks_skipped++;
  s->stats.audio_samples_dropped += (gint64) LA_SESSION_FRAMES_PER_BLOCK * SAMPLES_PER_FRAME;
  g_mutex_unlock (&s->lock);
  return TRUE;
}

/* End of stream: wait until the blocks in flight are out. */
static gboolean
finish_stream (LaSession *s, GError **error)
{
  return la_tpp_finish (s->tpp, error);
}

/* ---- engine thread ---- */

/* Waits for input; returns FALSE on quit.  Takes up to `max` samples. */
static gboolean
take_audio (LaSession *s, gsize max, GArray *out, gboolean *eos)
{
  g_mutex_lock (&s->lock);
  while (!s->quit && ((s->pending->len == 0 && !s->eos) || g_queue_get_length (&s->frames) >= MAX_QUEUED_FRAMES))
    g_cond_wait (&s->cond, &s->lock);
  if (s->quit) {
    g_mutex_unlock (&s->lock);
    return FALSE;
  }
  gsize n = MIN (max, s->pending->len);
  g_array_append_vals (out, s->pending->data, (guint) n);
  g_array_remove_range (s->pending, 0, (guint) n);
  s->consumed += (gint64) n;
  *eos = s->eos && s->pending->len == 0;
  s->stats.queue_ms = s->pending->len / (LA_SESSION_SAMPLE_RATE / 1000.0);
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
  return TRUE;
}

static gboolean
run_live (LaSession *s, GError **error)
{
  gsize chunk = (gsize) la_audio_live_block_samples (s->live);
  g_autoptr (GArray) buf = g_array_new (FALSE, FALSE, sizeof (float));
  for (;;) {
    gboolean eos = FALSE;
    g_array_set_size (buf, 0);
    if (!take_audio (s, chunk, buf, &eos))
      return TRUE;
    gint64 t0 = g_get_monotonic_time ();
    if (buf->len && !la_audio_live_push (s->live, (float *) buf->data, buf->len, LA_SESSION_SAMPLE_RATE, 1, error))
      return FALSE;
    if (eos)
      la_audio_live_finish (s->live);
    for (;;) {
      g_autoptr (LaTensor) a = la_audio_live_pop_block (s->live, error);
      if (!a) {
        if (error && *error)
          return FALSE;
        break;
      }
      s->stats.ms_audio = (g_get_monotonic_time () - t0) / 1000.0;
      if (skip_stale_block (s, chunk)) {
        t0 = g_get_monotonic_time ();
        continue;
      }
      if (!generate_block (s, a, error))
        return FALSE;
      t0 = g_get_monotonic_time ();
    }
    if (eos)
      return finish_stream (s, error);
  }
}

/* Offline parity mode: the whole stream's features at once, as the reference. */
static gboolean
run_offline (LaSession *s, GError **error)
{
  gboolean eos = FALSE;
  while (!eos)
    if (!take_audio (s, G_MAXSIZE, s->offline_pcm, &eos))
      return TRUE;
  gsize n = s->offline_pcm->len;
  gsize block_samples = (gsize) 4 * s->lat_per_block * (LA_SESSION_SAMPLE_RATE / LA_SESSION_FPS);
  gint64 n_blocks = (gint64) ((n + block_samples - 1) / block_samples);
  if (n_blocks == 0)
    return TRUE;
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (LaTensor) hs_dev = la_wav2vec2_encode_pcm (s->m->w2v, (float *) s->offline_pcm->data, n,
                                                        LA_SESSION_SAMPLE_RATE, 1, error);
  if (!hs_dev)
    return FALSE;
  g_autoptr (LaTensor) hs = host_f32 (s, hs_dev, error);
  if (!hs)
    return FALSE;
  g_autoptr (LaTensor) f30 = la_audio_interp_linear (hs, 50, 30, FALSE, error);
  if (!f30)
    return FALSE;
  int n_clips;
  g_autoptr (LaTensor) bucket = la_audio_bucket (f30, 30, LA_SESSION_FPS, 4 * s->lat_per_block * s->blocks_per_clip,
                                                 0, &n_clips, error);
  if (!bucket)
    return FALSE;
  g_autoptr (LaTensor) emb = la_audio_bucket_to_emb (bucket);
  s->stats.ms_audio = (g_get_monotonic_time () - t0) / 1000.0;
  for (gint64 b = 0; b < n_blocks; b++) {
    /* emit_block throttles on the frame queue; here only stop when asked. */
    g_mutex_lock (&s->lock);
    gboolean quit = s->quit;
    g_mutex_unlock (&s->lock);
    if (quit)
      return TRUE;
    g_autoptr (LaTensor) a = la_audio_emb_slice (emb, b * 4 * s->lat_per_block, 4 * s->lat_per_block);
    if (!generate_block (s, a, error))
      return FALSE;
  }
  return finish_stream (s, error);
}

static gpointer
engine_thread (gpointer data)
{
  LaSession *s = data;
  GError *e = NULL;
  gboolean ok = s->live ? run_live (s, &e) : run_offline (s, &e);
  g_mutex_lock (&s->lock);
  if (!ok && !s->error)
    s->error = e;
  else
    g_clear_error (&e);
  if (!s->quit)
    s->drained = TRUE;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
  return NULL;
}

static void
stop_thread (LaSession *s)
{
  if (!s->thread)
    return;
  g_mutex_lock (&s->lock);
  s->quit = TRUE;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
  g_thread_join (s->thread);
  s->thread = NULL;
}

static void
start_thread (LaSession *s)
{
  s->quit = FALSE;
  s->eos = FALSE;
  s->drained = FALSE;
  s->interrupted = FALSE;
  s->touched = FALSE;
  s->thread = g_thread_new ("la-engine", engine_thread, s);
}

/* ---- setup ---- */

#define DEVICES_HELP "expected 'cpu', or a list of up to %d pipeline stages each 'cpu' or 'tcp://HOST:PORT' " \
  "(a liveavatar-stage worker), or a list of 'cuda:N'"

/* "cuda:N" entries: a model bundle per GPU the plan uses (la_tpp_plan: DiT
 * stages, then the output stage, which decodes).  A GPU of DiT stages holds
 * the DiT; the output GPU the VAE, umT5 and wav2vec2 (and the DiT if it
 * runs steps too), so no component is resident twice on one GPU.  The
 * session's backend and bundle are the output GPU's. */
static gboolean
load_gpus (LaSession *s, const LaSessionParams *p, GError **error)
{
  LaTppPlan plan;
  if (!la_tpp_plan (s->n_stages, &plan, error))
    return FALSE;
  guint parts[LA_TPP_MAX_STAGES] = { 0 };
  int out = 0;
  for (int i = 0; i < s->n_stages; i++)
    s->stage_gpu[i] = -1;
  for (int k = 0; k < plan.n_stages; k++) {
    int dev = plan.stage[k].device, ord, g;
    la_device_parse (s->stage_devices[dev], &ord);      /* checked by load_devices */
    for (g = 0; g < s->n_gpus && s->gpu_ordinal[g] != ord; g++)
      ;
    if (g == s->n_gpus)
      s->gpu_ordinal[s->n_gpus++] = ord;
    s->stage_gpu[dev] = g;
    parts[g] |= plan.stage[k].n_steps ? LA_MODEL_PARTS_DIT : 0;
    if (plan.stage[k].output || !plan.stage[k].n_steps) {
      parts[g] |= LA_MODEL_PARTS_NO_DIT;
      out = g;
    }
  }
  for (int g = 0; g < s->n_gpus; g++) {
    g_autofree char *name = g_strdup_printf ("cuda:%d", s->gpu_ordinal[g]);
    g_autoptr (LaBackend) be = la_device_open (name, p->weights, 0, error);
    if (!be)
      goto fail;
    /* The bundle may come from the cache, bound to another session's backend
     * of this GPU: that backend (stream) is the one to use with it. */
    if (!(s->gpu_model[g] = la_model_bundle_acquire (be, name, p->model_dir, p->lora, p->weights, parts[g], error)))
      goto fail;
  }
  s->m = la_model_bundle_ref (s->gpu_model[out]);
  s->be = la_backend_ref (s->m->be);
  return TRUE;
fail:
  g_prefix_error (error, "devices '%s': ", p->devices);
  return FALSE;
}

/* "cpu", a comma list of "cpu" and "tcp://HOST:PORT" entries, or one of
 * "cuda:N" entries: one TPP pipeline stage per entry (docs/design/tpp.md; on
 * a CPU the stages are threads sharing the cores and one model; a tcp://
 * entry is a liveavatar-stage worker; CUDA stages, load_gpus). */
static gboolean
load_devices (LaSession *s, const LaSessionParams *p, GError **error)
{
  const char *dev = p->devices && *p->devices ? p->devices : "cpu";
  char **list = s->stage_devices = g_strsplit (dev, ",", -1);
  s->n_stages = (int) g_strv_length (list);
  int n_cuda = 0, n_bad = 0, ord;
  for (int i = 0; list[i]; i++) {
    g_strstrip (list[i]);
    if (la_device_parse (list[i], &ord) && ord >= 0) {
      g_free (list[i]);
      list[i] = g_strdup_printf ("cuda:%d", ord);     /* "cuda" is cuda:0 */
      n_cuda++;
    } else if (!is_worker (list[i]) && strcmp (list[i], "cpu"))
      n_bad++;
  }
  if (n_bad || (n_cuda && n_cuda != s->n_stages) || s->n_stages > LA_TPP_MAX_STAGES) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "devices '%s': " DEVICES_HELP, dev, LA_TPP_MAX_STAGES);
    return FALSE;
  }
  if (n_cuda)
    return load_gpus (s, p, error);
  if (!(s->be = la_device_open ("cpu", p->weights, p->n_threads, error)))
    return FALSE;
  return (s->m = la_model_bundle_acquire (s->be, "cpu", p->model_dir, p->lora, p->weights, LA_MODEL_PARTS_ALL,
                                          error)) != NULL;
}

static gboolean
check_params (const LaSessionParams *p, GError **error)
{
#define BAD(...) do { g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, __VA_ARGS__); return FALSE; } while (0)
  if (!p->model_dir || !*p->model_dir)
    BAD ("no model folder given");
  if (!p->ref_rgb || p->ref_width <= 0 || p->ref_height <= 0 || p->ref_stride < 3 * p->ref_width)
    BAD ("reference image: %dx%d with stride %d is not a packed RGB image", p->ref_width, p->ref_height, p->ref_stride);
  if (p->prompt && !g_utf8_validate (p->prompt, -1, NULL))
    BAD ("prompt is not valid UTF-8");
  if (p->sink_offset && (p->sink_offset < 4 || p->sink_offset > 30))
    BAD ("sink offset %d outside [4, 30] (0 = random)", p->sink_offset);
  if (p->lookahead_ms < 0 || p->context_ms < 0 || p->max_queue_ms < 0)
    BAD ("negative audio window or queue length");
  if (p->max_area < 0 || (p->max_area && p->max_area < 64 * 64))
    BAD ("max area %d is below one 64x64 tile", p->max_area);
  if ((unsigned) p->weights > LA_WEIGHTS_FP8)
    BAD ("weights %d: expected LA_WEIGHTS_FILE, _F32, _BF16 or _FP8", (int) p->weights);
#undef BAD
  return TRUE;
}

/* Any RGB image -> resized and centre-cropped to the session's size -> ref
 * and motion latents (docs/design/vae.md §8: the reference repeated as motion frames). */
static gboolean
encode_reference (LaSession *s, const guint8 *rgb, int w, int h, int stride, LaTensor **ref, LaTensor **mot,
                  GError **error)
{
  /* Pack the caller's rows (any stride) for the resampler. */
  g_autofree guint8 *packed = g_malloc ((gsize) w * h * 3);
  for (int y = 0; y < h; y++)
    memcpy (packed + (gsize) y * w * 3, rgb + (gsize) y * stride, (gsize) w * 3);
  guint8 *crop = la_image_resize_crop (packed, w, h, s->height, s->width, NULL, NULL);
  g_autoptr (GBytes) frame = g_bytes_new_take (crop, (gsize) s->width * s->height * 3);
  g_autoptr (LaTensor) px = la_image_to_tensor (crop, s->width, s->height);
  if (!la_vae_encode_session (s->m->vae, px, MOTION_FRAMES, FALSE, ref, mot, error))
    return FALSE;
  /* The element shows this frame while idle: resized once, here. */
  g_mutex_lock (&s->lock);
  g_clear_pointer (&s->ref_frame, g_bytes_unref);
  s->ref_frame = g_steal_pointer (&frame);
  g_mutex_unlock (&s->lock);
  return TRUE;
}

GBytes *
la_session_get_reference_frame (LaSession *s)
{
  g_mutex_lock (&s->lock);
  GBytes *b = s->ref_frame ? g_bytes_ref (s->ref_frame) : NULL;
  g_mutex_unlock (&s->lock);
  return b;
}

gboolean
la_session_set_reference (LaSession *s, const guint8 *rgb, int width, int height, int stride, GError **error)
{
  if (!rgb || width <= 0 || height <= 0 || stride < 3 * width) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "reference image: %dx%d with stride %d is not a packed RGB "
                 "image", width, height, stride);
    return FALSE;
  }
  LaTensor *ref = NULL, *mot = NULL;
  if (!encode_reference (s, rgb, width, height, stride, &ref, &mot, error))
    return FALSE;
  g_mutex_lock (&s->lock);
  g_clear_pointer (&s->swap_ref, la_tensor_unref);
  g_clear_pointer (&s->swap_mot, la_tensor_unref);
  s->swap_ref = ref;
  s->swap_mot = mot;
  g_mutex_unlock (&s->lock);
  return TRUE;
}

LaSession *
la_session_new (const LaSessionParams *params, GError **error)
{
  if (!check_params (params, error))
    return NULL;
  gint64 t0 = g_get_monotonic_time ();
  LaSession *s = g_new0 (LaSession, 1);
  s->p = *params;
  s->prompt = g_strdup (params->prompt ? params->prompt : "");
  s->p.prompt = s->prompt;
  s->p.model_dir = s->p.lora = s->p.devices = NULL;   /* not kept */
  s->p.ref_rgb = NULL;
  g_mutex_init (&s->lock);
  g_cond_init (&s->cond);
  g_queue_init (&s->frames);
  s->pending = g_array_new (FALSE, FALSE, sizeof (float));
  s->skips = g_array_new (FALSE, FALSE, sizeof (Skip));
  s->max_pending = (gsize) (params->max_queue_ms ? params->max_queue_ms : 2000) * (LA_SESSION_SAMPLE_RATE / 1000);

  if (!load_devices (s, params, error))
    goto fail;
  /* before the long setup: a host-backend output refuses device frames */
  if (params->device_frames && !la_session_set_device_frames (s, params->device_frames, error))
    goto fail;
  s->z_dim = s->m->vae_cfg.z_dim;
  {
    int H, W, sf = la_vae_spatial_factor (&s->m->vae_cfg) * s->m->dit_cfg.patch_size[1];
    if (!la_image_target_size (params->ref_height, params->ref_width, params->max_area ? params->max_area : 720 * 400,
                               MAX (64, sf), &H, &W, error))
      goto fail;
    s->width = W;
    s->height = H;
    s->lat_h = H / la_vae_spatial_factor (&s->m->vae_cfg);
    s->lat_w = W / la_vae_spatial_factor (&s->m->vae_cfg);
    if (!encode_reference (s, params->ref_rgb, params->ref_width, params->ref_height, params->ref_stride, &s->ref_lat,
                           &s->mot_lat, error))
      goto fail;
  }
  {
    g_autoptr (LaTensor) ctx = la_text_encode_prompt (s->m->t5, s->m->tok, s->prompt, s->m->dit_cfg.text_len, NULL, error);
    if (!ctx)
      goto fail;
    if (!(s->ctx = host_f32 (s, ctx, error)))
      goto fail;
  }
  if (!stream_new (s, error))
    goto fail;
  s->stats.ms_setup = (g_get_monotonic_time () - t0) / 1000.0;
  start_thread (s);
  return s;
fail:
  la_session_free (s);
  return NULL;
}

void
la_session_free (LaSession *s)
{
  if (!s)
    return;
  stop_thread (s);
  stream_free (s);
  g_queue_clear_full (&s->frames, (GDestroyNotify) la_frame_unref);
  g_clear_pointer (&s->ref_lat, la_tensor_unref);
  g_clear_pointer (&s->ref_frame, g_bytes_unref);
  g_clear_pointer (&s->mot_lat, la_tensor_unref);
  g_clear_pointer (&s->swap_ref, la_tensor_unref);
  g_clear_pointer (&s->swap_mot, la_tensor_unref);
  g_clear_pointer (&s->ctx, la_tensor_unref);
  g_clear_pointer (&s->m, la_model_bundle_release);
  for (int g = 0; g < s->n_gpus; g++)
    g_clear_pointer (&s->gpu_model[g], la_model_bundle_release);
  g_clear_pointer (&s->be, la_backend_unref);
  g_array_unref (s->pending);
  g_array_unref (s->skips);
  g_clear_error (&s->error);
  g_mutex_clear (&s->lock);
  g_cond_clear (&s->cond);
  g_free (s->prompt);
  g_strfreev (s->stage_devices);
  g_free (s);
}

void
la_session_get_size (LaSession *s, int *width, int *height)
{
  if (width) *width = s->width;
  if (height) *height = s->height;
}

gint64
la_session_get_latency_ns (LaSession *s)
{
  gint64 block_ns = (gint64) 4 * s->lat_per_block * (G_TIME_SPAN_SECOND / LA_SESSION_FPS) * 1000;
  return block_ns + (s->live ? (gint64) la_audio_live_latency_ns (s->live) : 0);
}

/* ---- audio in ---- */

static gboolean
push_f32 (LaSession *s, const float *pcm, gsize n, GError **error)
{
  g_mutex_lock (&s->lock);
  if (s->error) {
    g_set_error (error, LA_ERROR, s->error->code, "%s", s->error->message);
    g_mutex_unlock (&s->lock);
    return FALSE;
  }
  gboolean bounded = s->live != NULL;   /* offline mode keeps the whole stream */
  while (bounded && s->p.queue_policy == LA_QUEUE_BLOCK && !s->interrupted && !s->quit &&
         s->pending->len + n > s->max_pending && s->pending->len > 0)
    g_cond_wait (&s->cond, &s->lock);
  if (!s->interrupted) {
    s->touched = TRUE;
    g_array_append_vals (s->pending, pcm, (guint) n);
    s->stats.audio_samples_in += n;
    if (bounded && s->p.queue_policy == LA_QUEUE_DROP_OLDEST && s->pending->len > s->max_pending) {
      /* Whole frames, so the frames after the gap stay on the 25 fps grid. */
      gsize over = s->pending->len - s->max_pending;
      gsize drop = MIN (s->pending->len, (over + SAMPLES_PER_FRAME - 1) / SAMPLES_PER_FRAME * SAMPLES_PER_FRAME);
      Skip sk = { s->consumed, (gint64) (drop / SAMPLES_PER_FRAME) };
      g_array_remove_range (s->pending, 0, (guint) drop);
      s->stats.audio_samples_dropped += drop;
      if (sk.frames)
        g_array_append_val (s->skips, sk);
    }
    s->stats.queue_ms = s->pending->len / (LA_SESSION_SAMPLE_RATE / 1000.0);
    g_cond_broadcast (&s->cond);
  }
  g_mutex_unlock (&s->lock);
  return TRUE;
}

gboolean
la_session_push_audio (LaSession *s, const float *pcm, gsize n_samples, GError **error)
{
  return push_f32 (s, pcm, n_samples, error);
}

gboolean
la_session_push_audio_s16 (LaSession *s, const gint16 *pcm, gsize n_samples, GError **error)
{
  g_autofree float *f = g_new (float, n_samples ? n_samples : 1);
  for (gsize i = 0; i < n_samples; i++)
    f[i] = pcm[i] / 32768.0f;
  return push_f32 (s, f, n_samples, error);
}

void
la_session_push_silence (LaSession *s, gsize n_samples)
{
  g_autofree float *z = g_new0 (float, n_samples ? n_samples : 1);
  push_f32 (s, z, n_samples, NULL);
}

void
la_session_set_queue_policy (LaSession *s, LaQueuePolicy policy)
{
  g_mutex_lock (&s->lock);
  s->p.queue_policy = policy;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

void
la_session_end_of_stream (LaSession *s)
{
  g_mutex_lock (&s->lock);
  s->eos = TRUE;
  s->touched = TRUE;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

/* ---- frames out ---- */

LaFrame *
la_session_pull_frame (LaSession *s, gint64 timeout_us, GError **error)
{
  LaFrame *f = NULL;
  gint64 end = timeout_us < 0 ? G_MAXINT64 : g_get_monotonic_time () + timeout_us;
  g_mutex_lock (&s->lock);
  while (!(f = g_queue_pop_head (&s->frames)) && !s->error && !s->drained && !s->interrupted) {
    if (timeout_us < 0)
      g_cond_wait (&s->cond, &s->lock);
    else if (!g_cond_wait_until (&s->cond, &s->lock, end))
      break;
  }
  if (!f && s->error)
    g_set_error (error, LA_ERROR, s->error->code, "%s", s->error->message);
  if (f)
    g_cond_broadcast (&s->cond);      /* room for the engine */
  g_mutex_unlock (&s->lock);
  return f;
}

gboolean
la_session_is_drained (LaSession *s)
{
  g_mutex_lock (&s->lock);
  gboolean d = s->drained && g_queue_is_empty (&s->frames);
  g_mutex_unlock (&s->lock);
  return d;
}

void
la_session_interrupt (LaSession *s)
{
  g_mutex_lock (&s->lock);
  s->interrupted = TRUE;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

void
la_session_reset (LaSession *s)
{
  /* A stream that has seen nothing (and no new reference waits) is already
   * what a reset would build: keep it.  Hosts reset before every start (the
   * element at READY->PAUSED, right after la_session_new made the stream);
   * rebuilding would redo every stage's sink prefill and reconnect workers. */
  g_mutex_lock (&s->lock);
  gboolean fresh = s->thread && !s->touched && !s->error && !s->drained && !s->swap_ref;
  if (fresh)
    s->interrupted = FALSE;
  g_mutex_unlock (&s->lock);
  if (fresh)
    return;
  stop_thread (s);
  g_mutex_lock (&s->lock);
  g_queue_clear_full (&s->frames, (GDestroyNotify) la_frame_unref);
  g_queue_init (&s->frames);
  g_array_set_size (s->pending, 0);
  g_array_set_size (s->skips, 0);
  s->consumed = 0;
  g_clear_error (&s->error);
  s->stats.queue_ms = 0;
  g_mutex_unlock (&s->lock);
  stream_free (s);
  GError *e = NULL;
  if (!stream_new (s, &e)) {
    g_mutex_lock (&s->lock);
    s->error = e;
    s->drained = TRUE;
    g_mutex_unlock (&s->lock);
    return;
  }
  start_thread (s);
}

void
la_session_set_deadline_func (LaSession *s, LaSessionDeadlineFunc func, gpointer user_data)
{
  g_mutex_lock (&s->lock);
  s->deadline_func = func;
  s->deadline_data = user_data;
  g_mutex_unlock (&s->lock);
}

void
la_session_get_stats (LaSession *s, LaSessionStats *st)
{
  g_mutex_lock (&s->lock);
  *st = s->stats;
  g_mutex_unlock (&s->lock);
  st->weight_bytes = s->m && !s->n_gpus ? la_model_bundle_resident_bytes (s->m) : 0;
  for (int g = 0; g < s->n_gpus; g++)
    st->weight_bytes += la_model_bundle_resident_bytes (s->gpu_model[g]);
}

gboolean
la_session_set_device_frames (LaSession *s, LaDeviceFrames format, GError **error)
{
  if (format < LA_DEVICE_FRAMES_OFF || format > LA_DEVICE_FRAMES_NV12_BT709) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "device frames: unknown format %d", (int) format);
    return FALSE;
  }
  if (format != LA_DEVICE_FRAMES_OFF && la_backend_get_device (s->be) != LA_DEVICE_CUDA) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED,
                 "device frames: the session's output (the VAE) runs on the host backend, not on a CUDA "
                 "device (devices=cuda:N)");
    return FALSE;
  }
  g_atomic_int_set (&s->device_frames, (gint) format);
  return TRUE;
}
