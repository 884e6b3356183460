/* tpp-wire.h — the stage-worker protocol of multi-process TPP (docs/tpp.md,
 * "Stage workers").  One TCP connection per remote stage; the head (the
 * process running the pipeline) talks, the worker answers:
 *
 *   worker -> HELLO  version, DiT config (JSON), weights digest, backend
 *   head   -> INIT   stage, label, cache mask, session params, ref, motion, text context
 *   worker -> READY | ERROR
 *   head   -> BLOCK  block, d (or "draw"), refresh (+ ref, motion), x, audio      (repeated)
 *   worker -> RESULT block, x after the stage's steps, refresh and step seconds | ERROR
 *   head   -> BYE    (or closes)
 *
 * Framing: u32 magic | u32 type | u64 body length | body.  Fields are
 * little endian: u32, i64, f64, strings (u32 length + bytes) and tensors
 * (u32 ndim, 0 = none, i64 shape[ndim], f32 data).  Every read is bounds
 * checked, so a garbled or hostile peer gives an error, never a crash.
 */
#pragma once
#include <gio/gio.h>
#include <liveavatar/la-tensor.h>

#define TW_MAGIC   0x5754414cu   /* "LATW" */
#define TW_VERSION 1u

typedef enum {
  TW_HELLO = 1, TW_INIT, TW_READY, TW_BLOCK, TW_RESULT, TW_ERROR, TW_BYE,
} TwType;

const char *tw_type_name (guint32 type);

/* Writing: append fields to a body, then send it. */
void     tw_put_u32 (GByteArray *b, guint32 v);
void     tw_put_i64 (GByteArray *b, gint64 v);
void     tw_put_f64 (GByteArray *b, double v);
void     tw_put_str (GByteArray *b, const char *s);
/* t: host f32 tensor or NULL (sent as "none"). */
void     tw_put_tensor (GByteArray *b, const LaTensor *t);
gboolean tw_send (GOutputStream *out, guint32 type, GByteArray *body, const char *peer, GCancellable *c,
                  GError **error);

/* Reading: a received message and a cursor over its body.  A read past the
 * end (or a bad tensor) sets `bad` and returns 0 / NULL; check tw_done. */
typedef struct {
  guint32       type;
  guint8       *body;
  gsize         len, pos;
  gboolean      bad;
  const char   *why;
} TwMsg;

/* Reads one message; `peer` names the other end in errors.  A clean close
 * before the first byte is LA_ERROR_FAILED "closed the connection". */
gboolean tw_recv (GInputStream *in, TwMsg *m, const char *peer, GCancellable *c, GError **error);
/* Reads one message and checks its type; an ERROR message becomes that error. */
gboolean tw_expect (GInputStream *in, TwMsg *m, guint32 type, const char *peer, GCancellable *c, GError **error);
void     tw_msg_clear (TwMsg *m);
guint32  tw_get_u32 (TwMsg *m);
gint64   tw_get_i64 (TwMsg *m);
double   tw_get_f64 (TwMsg *m);
char    *tw_get_str (TwMsg *m);                 /* caller frees */
LaTensor *tw_get_tensor (TwMsg *m);             /* NULL: none (or bad) */
/* TRUE when the whole body was read without error; else a protocol error naming the peer. */
gboolean tw_done (TwMsg *m, const char *peer, GError **error);

/* ERROR message body from a GError, and back. */
gboolean tw_send_error (GOutputStream *out, const GError *err, const char *peer, GCancellable *c, GError **error);

/* The DiT session parameters that a stage needs (everything but the dump hook). */
#include "la-dit.h"
void     tw_put_params (GByteArray *b, const LaDitSessionParams *p);
void     tw_get_params (TwMsg *m, LaDitSessionParams *p);
