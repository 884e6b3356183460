/* tpp-wire.c — framing and field encoding of the stage-worker protocol
 * (see tpp-wire.h).  Messages are small except the tensors (a block's
 * latent and audio features, once per stage per block; the text context and
 * sink latents once per stream), so a message is read whole into memory. */
#include <string.h>
#include <liveavatar/la-error.h>
#include "tpp-wire.h"

#define TW_MAX_BODY ((guint64) 2 << 30)   /* 2 GiB: far above any real message */

const char *
tw_type_name (guint32 type)
{
  static const char *names[] = { "?", "HELLO", "INIT", "READY", "BLOCK", "RESULT", "ERROR", "BYE" };
  return type < G_N_ELEMENTS (names) ? names[type] : "?";
}

/* Socket errors become LA_ERROR_DEVICE (a remote stage is a device) naming the peer. */
static gboolean
io_failed (GError *e, const char *peer, const char *doing, GError **error)
{
  g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "%s %s: %s", doing, peer, e->message);
  g_error_free (e);
  return FALSE;
}

void
tw_put_u32 (GByteArray *b, guint32 v)
{
  v = GUINT32_TO_LE (v);
  g_byte_array_append (b, (const guint8 *) &v, 4);
}

void
tw_put_i64 (GByteArray *b, gint64 v)
{
  guint64 u = GUINT64_TO_LE ((guint64) v);
  g_byte_array_append (b, (const guint8 *) &u, 8);
}

void
tw_put_f64 (GByteArray *b, double v)
{
  guint64 u;
  memcpy (&u, &v, 8);
  tw_put_i64 (b, (gint64) u);
}

void
tw_put_str (GByteArray *b, const char *s)
{
  gsize n = s ? strlen (s) : 0;
  tw_put_u32 (b, (guint32) n);
  g_byte_array_append (b, (const guint8 *) (s ? s : ""), n);
}

void
tw_put_tensor (GByteArray *b, const LaTensor *t)
{
  if (!t) {
    tw_put_u32 (b, 0);
    return;
  }
  g_return_if_fail (t->dtype == LA_DTYPE_F32 && t->device == LA_DEVICE_CPU);
  tw_put_u32 (b, t->ndim);
  for (int i = 0; i < t->ndim; i++)
    tw_put_i64 (b, t->shape[i]);
  gsize n = la_tensor_numel (t);
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
  g_byte_array_append (b, t->data, n * 4);
#else
  const guint32 *src = t->data;
  for (gsize i = 0; i < n; i++)
    tw_put_u32 (b, src[i]);
#endif
}

gboolean
tw_send (GOutputStream *out, guint32 type, GByteArray *body, const char *peer, GCancellable *c, GError **error)
{
  guint8 head[16];
  guint32 magic = GUINT32_TO_LE (TW_MAGIC), ty = GUINT32_TO_LE (type);
  guint64 len = GUINT64_TO_LE ((guint64) (body ? body->len : 0));
  memcpy (head, &magic, 4);
  memcpy (head + 4, &ty, 4);
  memcpy (head + 8, &len, 8);
  GError *e = NULL;
  if (g_output_stream_write_all (out, head, sizeof head, NULL, c, &e) &&
      (!body || !body->len || g_output_stream_write_all (out, body->data, body->len, NULL, c, &e)) &&
      g_output_stream_flush (out, c, &e))
    return TRUE;
  return io_failed (e, peer, "writing to", error);
}

static gboolean
read_exact (GInputStream *in, void *buf, gsize n, gboolean *clean_eof, const char *peer, GCancellable *c,
            GError **error)
{
  gsize got = 0;
  GError *e = NULL;
  if (!g_input_stream_read_all (in, buf, n, &got, c, &e))
    return io_failed (e, peer, "reading from", error);
  if (got < n) {
    if (clean_eof && got == 0)
      *clean_eof = TRUE;
    g_set_error (error, LA_ERROR, LA_ERROR_FAILED, "%s closed the connection%s", peer,
                 got ? " in the middle of a message" : "");
    return FALSE;
  }
  return TRUE;
}

gboolean
tw_recv (GInputStream *in, TwMsg *m, const char *peer, GCancellable *c, GError **error)
{
  memset (m, 0, sizeof *m);
  guint8 head[16];
  guint32 magic, type;
  guint64 len;
  if (!read_exact (in, head, sizeof head, NULL, peer, c, error))
    return FALSE;
  memcpy (&magic, head, 4);
  memcpy (&type, head + 4, 4);
  memcpy (&len, head + 8, 8);
  magic = GUINT32_FROM_LE (magic);
  type = GUINT32_FROM_LE (type);
  len = GUINT64_FROM_LE (len);
  if (magic != TW_MAGIC || type < TW_HELLO || type > TW_BYE || len > TW_MAX_BODY) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s does not speak the liveavatar stage protocol "
                 "(bad message header: magic 0x%08x, type %u, length %" G_GUINT64_FORMAT ")", peer, magic, type, len);
    return FALSE;
  }
  m->type = type;
  m->len = len;
  m->body = g_try_malloc (MAX (len, 1));
  if (!m->body) {
    g_set_error (error, LA_ERROR, LA_ERROR_FAILED, "%s: cannot hold a %" G_GUINT64_FORMAT "-byte message",
                 peer, len);
    return FALSE;
  }
  if (len && !read_exact (in, m->body, len, NULL, peer, c, error)) {
    tw_msg_clear (m);
    return FALSE;
  }
  return TRUE;
}

void
tw_msg_clear (TwMsg *m)
{
  g_clear_pointer (&m->body, g_free);
  m->len = m->pos = 0;
}

static const guint8 *
take (TwMsg *m, gsize n, const char *what)
{
  if (m->bad || n > m->len - m->pos) {
    if (!m->bad)
      m->why = what;
    m->bad = TRUE;
    return NULL;
  }
  const guint8 *p = m->body + m->pos;
  m->pos += n;
  return p;
}

/* An n-byte little-endian unsigned integer (0 once the message is bad). */
static guint64
get_le (TwMsg *m, int n)
{
  const guint8 *p = take (m, n, "integer");
  guint64 v = 0;
  for (int i = p ? n - 1 : -1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

guint32
tw_get_u32 (TwMsg *m)
{
  return (guint32) get_le (m, 4);
}

gint64
tw_get_i64 (TwMsg *m)
{
  return (gint64) get_le (m, 8);
}

double
tw_get_f64 (TwMsg *m)
{
  guint64 u = (guint64) tw_get_i64 (m);
  double v;
  memcpy (&v, &u, 8);
  return v;
}

char *
tw_get_str (TwMsg *m)
{
  guint32 n = tw_get_u32 (m);
  const guint8 *p = take (m, n, "string");
  if (!p)
    return g_strdup ("");
  if (!g_utf8_validate ((const char *) p, n, NULL)) {
    m->bad = TRUE;
    m->why = "string (not UTF-8)";
    return g_strdup ("");
  }
  return g_strndup ((const char *) p, n);
}

LaTensor *
tw_get_tensor (TwMsg *m)
{
  guint32 ndim = tw_get_u32 (m);
  if (m->bad || ndim == 0)
    return NULL;
  if (ndim > LA_TENSOR_MAX_DIMS) {
    m->bad = TRUE;
    m->why = "tensor rank";
    return NULL;
  }
  int64_t shape[LA_TENSOR_MAX_DIMS];
  guint64 n = 1;
  for (guint32 i = 0; i < ndim; i++) {
    shape[i] = tw_get_i64 (m);
    if (shape[i] <= 0 || shape[i] > G_MAXINT32 || (n *= (guint64) shape[i]) > TW_MAX_BODY / 4) {
      m->bad = TRUE;
      m->why = "tensor shape";
      return NULL;
    }
  }
  const guint8 *p = take (m, n * 4, "tensor data");
  if (!p)
    return NULL;
  LaTensor *t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  memcpy (t->data, p, n * 4);
#if G_BYTE_ORDER != G_LITTLE_ENDIAN
  guint32 *d = t->data;
  for (guint64 i = 0; i < n; i++)
    d[i] = GUINT32_FROM_LE (d[i]);
#endif
  return t;
}

gboolean
tw_done (TwMsg *m, const char *peer, GError **error)
{
  if (!m->bad && m->pos == m->len)
    return TRUE;
  g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s sent a malformed %s message (%s)", peer,
               tw_type_name (m->type), m->bad ? (m->why ? m->why : "truncated") : "trailing bytes");
  return FALSE;
}

gboolean
tw_send_error (GOutputStream *out, const GError *err, const char *peer, GCancellable *c, GError **error)
{
  GByteArray *b = g_byte_array_new ();
  tw_put_u32 (b, err->domain == LA_ERROR ? (guint32) err->code : LA_ERROR_FAILED);
  tw_put_str (b, err->message);
  gboolean ok = tw_send (out, TW_ERROR, b, peer, c, error);
  g_byte_array_unref (b);
  return ok;
}

gboolean
tw_expect (GInputStream *in, TwMsg *m, guint32 type, const char *peer, GCancellable *c, GError **error)
{
  if (!tw_recv (in, m, peer, c, error))
    return FALSE;
  if (m->type == type)
    return TRUE;
  if (m->type == TW_ERROR) {
    guint32 code = tw_get_u32 (m);
    g_autofree char *msg = tw_get_str (m);
    if (code > LA_ERROR_NOT_IMPLEMENTED)
      code = LA_ERROR_FAILED;
    /* the caller names the peer (a stage label holds its address) */
    g_set_error (error, LA_ERROR, (gint) code, "worker error: %s", m->bad ? "(malformed error message)" : msg);
  } else
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s sent %s where %s was expected", peer,
                 tw_type_name (m->type), tw_type_name (type));
  tw_msg_clear (m);
  return FALSE;
}

void
tw_put_params (GByteArray *b, const LaDitSessionParams *p)
{
  const int v[] = { p->lat_h, p->lat_w, p->infer_frames, p->frames_per_block, p->audio_prefix,
                    p->motion_latent_frames, p->fixed_d, p->refresh_sink_at_clip1, (int) p->cache_mask };
  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    tw_put_u32 (b, (guint32) v[i]);
  tw_put_i64 (b, (gint64) p->d_seed);
}

void
tw_get_params (TwMsg *m, LaDitSessionParams *p)
{
  memset (p, 0, sizeof *p);
  int *v[] = { &p->lat_h, &p->lat_w, &p->infer_frames, &p->frames_per_block, &p->audio_prefix,
               &p->motion_latent_frames, &p->fixed_d, &p->refresh_sink_at_clip1 };
  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    *v[i] = (int) tw_get_u32 (m);
  p->cache_mask = tw_get_u32 (m);
  p->d_seed = (guint64) tw_get_i64 (m);
}
