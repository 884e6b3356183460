/* la-dit-audio.h — the DiT's audio conditioning modules (docs/design/audio-path.md §5, §6).
 *
 *  - LaCausalAudioEncoder (`casual_audio_encoder.*`, official spelling):
 *    SiLU-weighted mix of the L wav2vec2 layers, then two replicate-padded
 *    stride-2 causal conv stacks (local: num_audio_token tokens per frame +
 *    a learned padding token; global: one vector per frame).
 *  - LaAudioInjector (`audio_injector.*`): after the configured DiT layers,
 *    per latent frame, AdaLN(x, audio_glob[f]) then cross-attention of the
 *    frame's video tokens to its audio tokens (q/k RMSNorm, no RoPE), added
 *    to x.
 */
#pragma once
#include <glib.h>
#include "liveavatar/la-backend.h"
#include "la-checkpoint.h"
#include "liveavatar/la-weights.h"
#include "la-weight-binder.h"

G_BEGIN_DECLS

typedef struct _LaCausalAudioEncoder LaCausalAudioEncoder;
/* Loads `casual_audio_encoder.*` (official spelling) from ck; widths from the weight shapes; num_audio_token from the model config. */
LaCausalAudioEncoder *la_causal_audio_encoder_new (LaBackend *be, LaCheckpoint *ck, int num_audio_token, GError **error);
/* The same through a weight binder (resident precision, LoRA, release: la-weights.h);
 * the plain form binds f32 from a checkpoint the caller keeps. */
LaCausalAudioEncoder *la_causal_audio_encoder_new_bound (LaWeightBinder *wb, int num_audio_token, GError **error);
void la_causal_audio_encoder_free (LaCausalAudioEncoder *enc);
/* audio_input [L, A, T] (L wav2vec layers, A audio_dim, T frames, already prefixed by the caller) -> out_global [T', D], out_local [T', num_audio_token+1, D] with T' = output frames of the two stride-2 causal convs. Outputs allocated by the callee. */
gboolean la_causal_audio_encoder_forward (LaCausalAudioEncoder *enc, const LaTensor *audio_input, LaTensor **out_global, LaTensor **out_local, GError **error);

typedef struct _LaAudioInjector LaAudioInjector;
/* Loads audio_injector.injector.{j}.* and audio_injector.injector_adain_layers.{j}.* for j = 0..n_inject-1. */
LaAudioInjector *la_audio_injector_new (LaBackend *be, LaCheckpoint *ck, int n_inject, int num_heads, GError **error);
LaAudioInjector *la_audio_injector_new_bound (LaWeightBinder *wb, int n_inject, int num_heads, GError **error);
void la_audio_injector_free (LaAudioInjector *inj);
/* x [F*fsl, D] noisy tokens of F latent frames, updated in place: x[frame f] += injector_j(x[f], audio_tok[f], audio_glob[f]). audio_tok [F, ntok, D], audio_glob [F, D]. */
gboolean la_audio_injector_apply (LaAudioInjector *inj, int j, LaTensor *x, int n_frames, const LaTensor *audio_tok, const LaTensor *audio_glob, GError **error);
/* The same without the closing la_backend_sync: the ops are queued, a device
 * failure surfaces at the backend's next sync (a DiT step has none inside). */
gboolean la_audio_injector_queue (LaAudioInjector *inj, int j, LaTensor *x, int n_frames, const LaTensor *audio_tok, const LaTensor *audio_glob, GError **error);

G_END_DECLS

G_BEGIN_DECLS
/* Same as the above with host copies of intermediates added to dbg (golden runner / tests):
 * "audio_encoder.weighted_feat" [T, A]; "<prefix>.adain_out", "<prefix>.cross_attn_out" [F·fsl, D]. */
gboolean la_causal_audio_encoder_forward_dbg (LaCausalAudioEncoder *enc, const LaTensor *audio_input,
                                              LaTensor **out_global, LaTensor **out_local,
                                              LaCheckpoint *dbg, GError **error);
gboolean la_audio_injector_apply_dbg (LaAudioInjector *inj, int j, LaTensor *x, int n_frames,
                                      const LaTensor *audio_tok, const LaTensor *audio_glob,
                                      LaCheckpoint *dbg, const char *dbg_prefix, GError **error);
G_END_DECLS
