/* la-audio-private.h — small helpers shared by the lib/audio sources. */
#pragma once
#include "liveavatar/la-backend.h"
#include "la-checkpoint.h"
#include "liveavatar/la-error.h"
#include "liveavatar/la-weights.h"
#include "la-ops.h"
#include "la-weight-binder.h"

/* A view of `count`-shaped data starting `offset` elements into t (same storage). */
static inline LaTensor *
la_audio_view (const LaTensor *t, int64_t offset, int ndim, const int64_t *shape)
{
  return la_tensor_new_view (t->dtype, ndim, shape, t->storage,
                             (char *) t->data + offset * (int64_t) la_dtype_size (t->dtype),
                             t->device, t->device_index);
}

/* Required checkpoint tensor, uploaded to the backend as f32 (a new tensor). */
static inline LaTensor *
la_audio_load (LaBackend *be, LaCheckpoint *ck, const char *name, int ndim, const int64_t *shape,
               GError **error)
{
  LaTensor *src = la_checkpoint_require (ck, name, ndim, shape, error);
  if (!src)
    return NULL;
  LaTensor *t = la_alloc (be, LA_DTYPE_F32, src->ndim, src->shape);
  la_copy (be, t, src);
  la_tensor_set_name (t, name);
  return t;
}

/* Host f32 copy of a backend tensor added to dbg under name (no-op when dbg is NULL). */
static inline void
la_audio_dbg (LaBackend *be, LaCheckpoint *dbg, const char *name, const LaTensor *t)
{
  if (!dbg)
    return;
  LaTensor *h = la_tensor_new (LA_DTYPE_F32, t->ndim, t->shape);
  la_copy (be, h, t);
  la_checkpoint_add (dbg, name, h);
  la_tensor_unref (h);
}

#define LA_AUDIO_CLEAR(t) g_clear_pointer (&(t), la_tensor_unref)
