/* la-audio.h — the audio front end: 16 kHz mono PCM -> wav2vec2 hidden
 * states -> per-video-frame audio vectors for the DiT (docs/design/audio-path.md).
 *
 *  - Normalisation (docs/design/audio-path.md §2): whole-buffer zero mean / unit variance, numpy
 *    float32 rules.
 *  - wav2vec2 (docs/design/audio-path.md §3): HF Wav2Vec2ForCTC with the stable-layer-norm ("large")
 *    architecture; every size comes from the HF config.json; returns all
 *    L+1 hidden states, only the last one LayerNormed.
 *  - Offline alignment (docs/design/audio-path.md §4, §4.3): 50 -> 30 fps align-corners linear
 *    interpolation, the video-frame bucket (frame i -> (6i+2)//5 at 25 fps)
 *    with zero vectors past the end.
 *  - Live mode (docs/design/audio-path.md §7): per block of video frames, a window with past context
 *    and look-ahead, exact 2:1 frame mapping, running or per-window stats.
 */
#pragma once
#include <glib.h>
#include <json-glib/json-glib.h>
#include "liveavatar/la-backend.h"
#include "la-checkpoint.h"
#include "liveavatar/la-weights.h"
#include "la-weight-binder.h"

G_BEGIN_DECLS

#define LA_AUDIO_SAMPLE_RATE 16000   /* what wav2vec2 was trained on; the element resamples upstream */
#define LA_W2V_MAX_CONV 16

/* ---- normalisation ---- */
/* out[i] = (x[i] − mean) / f32(sqrt(f64(var) + 1e-7)) with numpy's float32 pairwise
 * sums (numpy < 2 scalar rules, as the reference); out may equal x.  stats (may be
 * NULL) receives mean, var, denominator. */
void la_audio_normalize (const float *x, size_t n, float *out, float stats[3]);

/* ---- wav2vec2 ---- */
typedef struct {
  int hidden_size, num_layers, num_heads, intermediate_size, vocab_size;
  int n_conv;
  int conv_dim[LA_W2V_MAX_CONV], conv_kernel[LA_W2V_MAX_CONV], conv_stride[LA_W2V_MAX_CONV];
  gboolean conv_bias;
  int pos_kernel, pos_groups;     /* num_conv_pos_embeddings, num_conv_pos_embedding_groups */
  double eps;                     /* layer_norm_eps */
} LaWav2Vec2Config;

/* wav2vec2-large-xlsr-53-english (what LiveAvatar uses). */
void     la_wav2vec2_config_init_large (LaWav2Vec2Config *cfg);
/* From an HF config.json object / file.  Unsupported variants (feat_extract_norm
 * "group", do_stable_layer_norm false, non-gelu activations) are errors. */
gboolean la_wav2vec2_config_from_json (JsonObject *o, LaWav2Vec2Config *cfg, GError **error);
gboolean la_wav2vec2_config_load (const char *config_json, LaWav2Vec2Config *cfg, GError **error);
/* HF config.json text for cfg (caller frees). */
char    *la_wav2vec2_config_to_json (const LaWav2Vec2Config *cfg);
/* Output frames for n samples (cascade of the conv layers; 0 when too short). */
int64_t  la_wav2vec2_num_frames (const LaWav2Vec2Config *cfg, int64_t n_samples);
/* Samples spanned by one frame (receptive field) and between frames (hop): 400 / 320 for the real kernels. */
int64_t  la_wav2vec2_receptive_field (const LaWav2Vec2Config *cfg);
int64_t  la_wav2vec2_hop (const LaWav2Vec2Config *cfg);

typedef struct _LaWav2Vec2 LaWav2Vec2;
/* Loads wav2vec2.* (the CTC head is ignored); shapes checked against cfg.  The
 * positional conv weight norm (weight_g/weight_v or parametrizations.weight.original0/1,
 * norm over dims 0 and 1 per tap) is folded into one kernel here. */
LaWav2Vec2 *la_wav2vec2_new (LaBackend *be, const LaWav2Vec2Config *cfg, LaCheckpoint *ck, GError **error);
/* The same through a weight binder (la-weights.h); la_wav2vec2_new binds f32
 * from a checkpoint the caller keeps. */
LaWav2Vec2 *la_wav2vec2_new_bound (const LaWav2Vec2Config *cfg, LaWeightBinder *wb, GError **error);
/* An HF folder: config.json + model.safetensors or pytorch_model.bin. */
LaWav2Vec2 *la_wav2vec2_open (LaBackend *be, const char *folder, GError **error);
/* la_wav2vec2_open with a resident precision (la_wav2vec2_open: the file's);
 * the checkpoint is released as it is bound; resident (may be NULL) gets the
 * bytes bound per dtype, LA_DTYPE_COUNT entries. */
LaWav2Vec2 *la_wav2vec2_open_full (LaBackend *be, const char *folder, LaWeights weights, guint64 *resident,
                                   GError **error);
void        la_wav2vec2_free (LaWav2Vec2 *m);
const LaWav2Vec2Config *la_wav2vec2_get_config (LaWav2Vec2 *m);
LaBackend  *la_wav2vec2_get_backend (LaWav2Vec2 *m);   /* borrowed */

/* input_values [N] (normalised waveform, f32 host or device) -> hidden states
 * [L+1, T_a, H] (allocated on the model's backend).  When dbg is not NULL, host
 * copies of the intermediates are added to it under the golden case's names
 * (time-major: conv outputs are [T, C], pos_conv_embed.conv_out [T+1, H]). */
LaTensor *la_wav2vec2_forward (LaWav2Vec2 *m, const LaTensor *input_values, LaCheckpoint *dbg,
                               GError **error);
/* Engine API: interleaved float PCM -> hidden states; whole-buffer normalisation.
 * sample_rate must be 16000 and channels 1 (the element converts upstream). */
LaTensor *la_wav2vec2_encode_pcm (LaWav2Vec2 *m, const float *pcm, size_t n_frames,
                                  int sample_rate, int channels, GError **error);

/* Random weights with HF key names (legacy weight_g/weight_v spelling) for cfg,
 * N(0, 1/fan_in) matrices, 1 + N(0, 0.01) norm weights, N(0, 0.01) biases. */
LaCheckpoint *la_wav2vec2_random_weights (const LaWav2Vec2Config *cfg, guint64 seed);
/* Writes config.json + model.safetensors of random weights into folder (created). */
gboolean      la_wav2vec2_write_random_folder (const char *folder, const LaWav2Vec2Config *cfg,
                                               guint64 seed, GError **error);

/* ---- offline alignment (host, f32) ---- */
/* T_30 = int(T_a / in_fps · out_fps) (double, truncation). */
int64_t   la_audio_resampled_len (int64_t t_in, int in_fps, int out_fps);
/* hs [L, T, C] -> [L, T_out, C], align_corners linear interpolation along T.
 * gpu_form FALSE: PyTorch's CPU kernel (position and λ in double, fp32 blend) — the golden;
 * TRUE: the CUDA kernel (all fp32). */
LaTensor *la_audio_interp_linear (const LaTensor *hs, int in_fps, int out_fps, gboolean gpu_form,
                                  GError **error);
/* numpy get_sample_indices(original_fps, total_frames, target_fps, num_sample, fixed_start). */
gboolean  la_audio_sample_indices (int original_fps, int64_t total_frames, int target_fps,
                                   int64_t num_sample, int64_t fixed_start, int64_t *out,
                                   GError **error);
/* get_audio_embed_bucket_fps: f30 [L, T30, C] -> bucket [N_vid, L, C·(2m+1)], N_vid =
 * n_clips · batch_frames, zero rows for frames past the end; *n_clips set. */
LaTensor *la_audio_bucket (const LaTensor *f30, int video_rate, int fps, int batch_frames, int m,
                           int *n_clips, GError **error);
/* bucket [N, L, C] -> audio_emb [L, C, N] (WanS2V.encode_audio's permute). */
LaTensor *la_audio_bucket_to_emb (const LaTensor *bucket);
/* audio_emb [L, C, N] columns [start, start+count) -> [L, C, count]; columns ≥ N are zero. */
LaTensor *la_audio_emb_slice (const LaTensor *emb, int64_t start, int64_t count);

/* ---- live mode ---- */
typedef enum {
  LA_AUDIO_NORM_WINDOW,    /* mean/var of each window */
  LA_AUDIO_NORM_RUNNING,   /* mean/var of everything received so far */
} LaAudioNormMode;

typedef struct {
  int past_ms;             /* context before the block's first sample */
  int lookahead_ms;        /* context after the block's last sample (added to latency) */
  int block_frames;        /* video frames per block (12) */
  int video_fps;           /* 25 */
  LaAudioNormMode norm;
} LaAudioLiveConfig;

void la_audio_live_config_init (LaAudioLiveConfig *cfg);   /* 4000 ms past, 400 ms ahead, 12, 25, window */

typedef struct _LaAudioLive LaAudioLive;
LaAudioLive *la_audio_live_new (LaWav2Vec2 *m, const LaAudioLiveConfig *cfg, GError **error);
void         la_audio_live_free (LaAudioLive *live);
/* Appends mono 16 kHz samples. */
gboolean     la_audio_live_push (LaAudioLive *live, const float *pcm, size_t n, int sample_rate,
                                 int channels, GError **error);
/* Marks the end of the stream: the last block is padded with silence. */
void         la_audio_live_finish (LaAudioLive *live);
/* Next block's audio_input [L+1, H, block_frames] (host f32) once its window is
 * available; NULL without error when more samples are needed.  Video frame i
 * uses wav2vec2 frame 2i (hop 320 = 16000/50; exact for 25 fps). */
LaTensor    *la_audio_live_pop_block (LaAudioLive *live, GError **error);
/* Samples per block, and the look-ahead latency in nanoseconds. */
int64_t      la_audio_live_block_samples (LaAudioLive *live);
guint64      la_audio_live_latency_ns (LaAudioLive *live);

G_END_DECLS
