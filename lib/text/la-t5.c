/* la-t5.c — the umT5 encoder (T5Encoder of wan_2_2/modules/t5.py, encoder
 * only; docs/design/text.md §3) on the ops interface.
 *
 *   x = token_embedding[ids]                          (no scaling)
 *   per block l:
 *     h = RMS(x) * norm1                              (T5 RMSNorm: no mean, no bias)
 *     x = x + Wo · softmax(q·k^T + bias_l + mask) · v (NO 1/sqrt(d) scaling)
 *     h = RMS(x) * norm2
 *     x = x + fc2( fc1(h) ⊙ gelu_tanh(gate(h)) )
 *   out = RMS(x) * norm                               (final norm)
 * bias_l[h, i, j] = pos_embedding_l[bucket(j - i), h]  (la-t5-bucket.c).
 * Mask (reference T5Attention): masked keys get the dtype's lowest finite
 * value *instead of* the bias (masked_fill), so they drop out of softmax.
 * No biases in any linear; dropout is inactive at inference.
 *
 * Sizes come from the weight shapes:
 *   token_embedding.weight [vocab, dim]; blocks.l.attn.q.weight [dim_attn, dim];
 *   blocks.l.ffn.fc1.weight [dim_ffn, dim];
 *   blocks.l.pos_embedding.embedding.weight [num_buckets, num_heads].
 */
#include <float.h>
#include <string.h>
#include <liveavatar/la-error.h>
#include "la-text-private.h"
#include "la-ops.h"

typedef struct {
  LaTensor *norm1, *q, *k, *v, *o, *norm2, *gate, *fc1, *fc2;
  LaTensor *pos;   /* host f32 [num_buckets, H] */
} T5Block;

struct _LaT5Encoder {
  LaBackend *be;
  LaT5Config cfg;
  LaCheckpoint *ck;   /* keeps the embedding's storage alive */
  LaTensor *embedding;   /* host, any float dtype [vocab, dim] */
  LaTensor *norm;
  T5Block *blocks;
};

void
la_t5_config_umt5_xxl (LaT5Config *cfg)
{
  memset (cfg, 0, sizeof *cfg);          /* fields added later default to 0 (weight_dtype f32) */
  cfg->vocab = 256384;
  cfg->dim = 4096;
  cfg->dim_attn = 4096;
  cfg->dim_ffn = 10240;
  cfg->num_heads = 64;
  cfg->num_layers = 24;
  cfg->num_buckets = 32;
  cfg->max_dist = 128;
  cfg->eps = 1e-6f;
}

const LaT5Config *
la_t5_encoder_config (const LaT5Encoder *enc)
{
  return &enc->cfg;
}

/* Binds a checkpoint tensor (la-weight-binder.h: matrices are linear
 * weights in the binder's precision, norms f32). */
static LaTensor *
require_up (LaWeightBinder *wb, const char *name, int ndim, int64_t d0, int64_t d1, GError **error)
{
  return la_weight_require (wb, name, ndim == 2, ndim, (int64_t[]) { d0, d1 }, error);
}

static gboolean
check_size (const char *what, int from_cfg, int from_weights, GError **error)
{
  if (from_cfg > 0 && from_cfg != from_weights) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE,
                 "T5 config %s = %d but the weights give %d", what, from_cfg, from_weights);
    return FALSE;
  }
  return TRUE;
}

void
la_t5_encoder_free (LaT5Encoder *enc)
{
  if (!enc)
    return;
  if (enc->blocks) {
    for (int l = 0; l < enc->cfg.num_layers; l++) {
      T5Block *b = &enc->blocks[l];
      LaTensor *all[] = { b->norm1, b->q, b->k, b->v, b->o, b->norm2, b->gate, b->fc1, b->fc2, b->pos };
      for (guint i = 0; i < G_N_ELEMENTS (all); i++)
        if (all[i])
          la_tensor_unref (all[i]);
    }
    g_free (enc->blocks);
  }
  if (enc->norm)
    la_tensor_unref (enc->norm);
  if (enc->embedding)
    la_tensor_unref (enc->embedding);
  if (enc->ck)
    la_checkpoint_unref (enc->ck);
  if (enc->be)
    la_backend_unref (enc->be);
  g_free (enc);
}

LaT5Encoder *
la_t5_encoder_new (LaBackend *be, LaCheckpoint *ck, const LaT5Config *cfg, GError **error)
{
  g_return_val_if_fail (be && ck, NULL);
  LaWeightBinder wb;
  la_weight_binder_init (&wb, be, ck, cfg && cfg->weight_dtype == LA_DTYPE_BF16 ? LA_WEIGHTS_BF16 : LA_WEIGHTS_F32);
  if (cfg && !la_dtype_is_float (cfg->weight_dtype)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "T5 weight_dtype %d is not a float type",
                 (int) cfg->weight_dtype);
    return NULL;
  }
  return la_t5_encoder_new_bound (cfg, &wb, error);
}

LaT5Encoder *
la_t5_encoder_new_bound (const LaT5Config *cfg, LaWeightBinder *wb, GError **error)
{
  LaBackend *be = wb->be;
  LaCheckpoint *ck = wb->ck;
  LaT5Encoder *enc = g_new0 (LaT5Encoder, 1);
  enc->be = la_backend_ref (be);
  enc->ck = la_checkpoint_ref (ck);
  enc->cfg.max_dist = cfg && cfg->max_dist > 0 ? cfg->max_dist : 128;
  enc->cfg.eps = cfg && cfg->eps > 0 ? cfg->eps : 1e-6f;

  /* sizes from the shapes */
  LaTensor *emb = la_checkpoint_require (ck, "token_embedding.weight", 2, (int64_t[]) { -1, -1 }, error);
  if (!emb)
    goto fail;
  if (!la_dtype_is_float (emb->dtype) || emb->device != LA_DEVICE_CPU) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE,
                 "%s: token_embedding.weight must be a host float tensor", la_checkpoint_path (ck));
    goto fail;
  }
  enc->embedding = la_tensor_ref (emb);
  LaT5Config *c = &enc->cfg;
  c->vocab = (int) emb->shape[0];
  c->dim = (int) emb->shape[1];
  LaTensor *q0 = la_checkpoint_require (ck, "blocks.0.attn.q.weight", 2, (int64_t[]) { -1, c->dim }, error);
  LaTensor *f0 = q0 ? la_checkpoint_require (ck, "blocks.0.ffn.fc1.weight", 2, (int64_t[]) { -1, c->dim }, error) : NULL;
  if (!f0)
    goto fail;
  c->dim_attn = (int) q0->shape[0];
  c->dim_ffn = (int) f0->shape[0];
  /* per-layer tables (umT5: shared_pos = False); a shared one is accepted too */
  LaTensor *pos0 = la_checkpoint_get (ck, "blocks.0.pos_embedding.embedding.weight");
  LaTensor *pos_shared = la_checkpoint_get (ck, "pos_embedding.embedding.weight");
  LaTensor *pt = pos0 ? pos0 : pos_shared;
  if (!pt || pt->ndim != 2) {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND,
                 "%s: missing tensor blocks.0.pos_embedding.embedding.weight [num_buckets, num_heads]",
                 la_checkpoint_path (ck));
    goto fail;
  }
  c->num_buckets = (int) pt->shape[0];
  c->num_heads = (int) pt->shape[1];
  c->num_layers = 0;
  for (;;) {
    char name[64];
    g_snprintf (name, sizeof name, "blocks.%d.norm1.weight", c->num_layers);
    if (!la_checkpoint_get (ck, name))
      break;
    c->num_layers++;
  }
  if (c->num_heads <= 0 || c->dim_attn % c->num_heads != 0 || c->num_buckets < 4) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE,
                 "%s: dim_attn %d is not a multiple of num_heads %d (or num_buckets %d < 4)",
                 la_checkpoint_path (ck), c->dim_attn, c->num_heads, c->num_buckets);
    goto fail;
  }
  if (cfg && (!check_size ("vocab", cfg->vocab, c->vocab, error) ||
              !check_size ("dim", cfg->dim, c->dim, error) ||
              !check_size ("dim_attn", cfg->dim_attn, c->dim_attn, error) ||
              !check_size ("dim_ffn", cfg->dim_ffn, c->dim_ffn, error) ||
              !check_size ("num_heads", cfg->num_heads, c->num_heads, error) ||
              !check_size ("num_layers", cfg->num_layers, c->num_layers, error) ||
              !check_size ("num_buckets", cfg->num_buckets, c->num_buckets, error)))
    goto fail;

  int nl = c->num_layers;
  enc->blocks = g_new0 (T5Block, MAX (nl, 1));
  for (int l = 0; l < nl; l++) {
    T5Block *b = &enc->blocks[l];
    char n[96];
#define W(field, key, nd, d0, d1)                                   \
    g_snprintf (n, sizeof n, "blocks.%d." key, l);                  \
    if (!(b->field = require_up (wb, n, nd, d0, d1, error))) \
      goto fail;
    W (norm1, "norm1.weight", 1, c->dim, 0);
    W (q, "attn.q.weight", 2, c->dim_attn, c->dim);
    W (k, "attn.k.weight", 2, c->dim_attn, c->dim);
    W (v, "attn.v.weight", 2, c->dim_attn, c->dim);
    W (o, "attn.o.weight", 2, c->dim, c->dim_attn);
    W (norm2, "norm2.weight", 1, c->dim, 0);
    W (gate, "ffn.gate.0.weight", 2, c->dim_ffn, c->dim);
    W (fc1, "ffn.fc1.weight", 2, c->dim_ffn, c->dim);
    W (fc2, "ffn.fc2.weight", 2, c->dim, c->dim_ffn);
#undef W
    g_snprintf (n, sizeof n, "blocks.%d.pos_embedding.embedding.weight", l);
    LaTensor *p = pos0 ? la_checkpoint_require (ck, n, 2, (int64_t[]) { c->num_buckets, c->num_heads }, error)
                       : pos_shared;
    if (!p)
      goto fail;
    b->pos = la_tensor_as_f32 (p);   /* host: the bias is built on the host */
  }
  if (!(enc->norm = require_up (wb, "norm.weight", 1, c->dim, 0, error)))
    goto fail;
  /* what the linears became (f32 when there is no layer) */
  c->weight_dtype = nl > 0 ? enc->blocks[0].q->dtype : LA_DTYPE_F32;
  if (!la_backend_sync (be, error))
    goto fail;
  return enc;

fail:
  la_t5_encoder_free (enc);
  return NULL;
}

LaT5Encoder *
la_t5_encoder_new_from_file (LaBackend *be, const char *path, const LaT5Config *cfg, GError **error)
{
  g_autoptr (LaCheckpoint) ck = la_checkpoint_open (path, error);
  return ck ? la_t5_encoder_new (be, ck, cfg, error) : NULL;
}

LaTensor *
la_t5_encode_full (LaT5Encoder *enc, const gint32 *ids, const gint32 *mask, int n_ids,
                   LaT5BlockHook hook, gpointer user_data, GError **error)
{
  const LaT5Config *c = &enc->cfg;
  LaBackend *be = enc->be;
  if (n_ids < 1 || !ids) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "T5 encode: need at least one token id (got %d)", n_ids);
    return NULL;
  }
  for (int i = 0; i < n_ids; i++)
    if (ids[i] < 0 || ids[i] >= c->vocab) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                   "T5 encode: token id %d at position %d is outside the vocabulary [0, %d)",
                   ids[i], i, c->vocab);
      return NULL;
    }
  int64_t L = n_ids, D = c->dim, A = c->dim_attn, F = c->dim_ffn, H = c->num_heads;

  /* embedding gather on the host (the table stays in the mapped checkpoint) */
  LaTensor *x_host = la_tensor_new (LA_DTYPE_F32, 2, (int64_t[]) { L, D });
  size_t esz = la_dtype_size (enc->embedding->dtype);
  for (int i = 0; i < L; i++)
    la_convert (la_tensor_f32 (x_host) + i * D, LA_DTYPE_F32,
                (const char *) enc->embedding->data + (size_t) ids[i] * D * esz,
                enc->embedding->dtype, D);
  LaTensor *x = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { L, D });
  la_copy (be, x, x_host);
  la_tensor_unref (x_host);

  LaTensor *h = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { L, D });
  LaTensor *y = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { L, D });
  LaTensor *q = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { L, A });
  LaTensor *k = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { L, A });
  LaTensor *v = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { L, A });
  LaTensor *a = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { L, A });
  LaTensor *g = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { L, F });
  LaTensor *f = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { L, F });
  LaTensor *bias = la_alloc (be, LA_DTYPE_F32, 3, (int64_t[]) { H, L, L });
  LaTensor *bias_host = la_tensor_new (LA_DTYPE_F32, 3, (int64_t[]) { H, L, L });
  float *bh = la_tensor_f32 (bias_host);

  for (int l = 0; l < c->num_layers; l++) {
    T5Block *b = &enc->blocks[l];
    la_t5_fill_bias (bh, la_tensor_f32 (b->pos), c->num_buckets, (int) H, (int) L, (int) L, c->max_dist);
    if (mask)   /* masked_fill(mask == 0, finfo(float32).min) over the keys */
      for (int64_t hi = 0; hi < H * L; hi++)
        for (int j = 0; j < L; j++)
          if (!mask[j])
            bh[hi * L + j] = -FLT_MAX;
    la_copy (be, bias, bias_host);

    /* x = x + o(attn(norm1(x))) */
    la_rms_norm (be, h, x, b->norm1, c->eps);
    la_linear (be, q, h, b->q, NULL);
    la_linear (be, k, h, b->k, NULL);
    la_linear (be, v, h, b->v, NULL);
    la_attention (be, a, q, k, v, (int) H, 1.0f, bias);
    la_linear (be, y, a, b->o, NULL);
    la_binary (be, LA_BINARY_ADD, x, x, y);

    /* x = x + fc2(fc1(norm2(x)) * gelu_tanh(gate(norm2(x)))) */
    la_rms_norm (be, h, x, b->norm2, c->eps);
    la_linear (be, g, h, b->gate, NULL);
    la_unary (be, LA_UNARY_GELU_TANH, g, g);
    la_linear (be, f, h, b->fc1, NULL);
    la_binary (be, LA_BINARY_MUL, f, f, g);
    la_linear (be, y, f, b->fc2, NULL);
    la_binary (be, LA_BINARY_ADD, x, x, y);
    if (hook)
      hook (l, x, user_data);
  }
  la_rms_norm (be, x, x, enc->norm, c->eps);

  LaTensor *tmp[] = { h, y, q, k, v, a, g, f, bias, bias_host };
  for (guint i = 0; i < G_N_ELEMENTS (tmp); i++)
    la_tensor_unref (tmp[i]);
  if (!la_backend_sync (be, error)) {
    la_tensor_unref (x);
    return NULL;
  }
  return x;
}

LaTensor *
la_t5_encode (LaT5Encoder *enc, const gint32 *ids, int n_ids, GError **error)
{
  return la_t5_encode_full (enc, ids, NULL, n_ids, NULL, NULL, error);
}
