/* tpp-remote.h — a pipeline stage run by a stage worker process (tpp-remote.c). */
#pragma once
#include "tpp-internal.h"
#include "tpp-wire.h"

typedef struct _TppRemote TppRemote;

/* Connects to "tcp://HOST:PORT" (or "HOST:PORT") and reads the worker's greeting. */
TppRemote         *tpp_remote_connect (const char *address, GCancellable *c, GError **error);
const LaDitConfig *tpp_remote_config (TppRemote *r);
const char        *tpp_remote_digest (TppRemote *r);    /* "" when the worker did not say */
const char        *tpp_remote_address (TppRemote *r);
/* The worker builds the stage's session (p.cache_mask = its steps). */
gboolean tpp_remote_init (TppRemote *r, int stage, const char *label, const LaDitSessionParams *p,
                          const LaTensor *ref, const LaTensor *motion, const LaTensor *ctx, GCancellable *c,
                          GError **error);
/* One block through the worker's steps: m->x is replaced by the result.
 * refresh: the worker first rebuilds its sink from refresh_ref and
 * m->refresh_motion.  The worker's own timings come back for the timeline. */
gboolean tpp_remote_run (TppRemote *r, TppMsg *m, gboolean refresh, const LaTensor *refresh_ref,
                         double *refresh_s, double *step_s, GCancellable *c, GError **error);
/* Says BYE (best effort) and closes. */
void     tpp_remote_free (TppRemote *r);
