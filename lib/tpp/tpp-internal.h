/* tpp-internal.h — what the TPP pipeline and its transports share.
 *
 * A message is one block (or the end of the stream) moving from stage k−1 to
 * stage k over "link k" (link 0 is the caller's input to stage 0).  The
 * latent x is a host f32 tensor; the transport decides how its bytes travel
 * (a pointer in-process, ncclSend/ncclRecv between GPUs).  Everything else in
 * a message (block index, audio features, d values, refresh request) is
 * known on every stage's host in one process and travels by pointer.
 * A remote stage (tpp-remote.h) is a local stage thread that ships the whole
 * message to its stage worker and back; the transports never see it.
 */
#pragma once
#include "la-tpp-pipeline.h"
#include <liveavatar/la-error.h>

typedef enum { TPP_MSG_BLOCK, TPP_MSG_EOS } TppMsgKind;

typedef struct {
  TppMsgKind kind;
  gint64     block;
  LaTensor  *x;                /* host f32 [16, F, h, w] */
  LaTensor  *audio;
  gboolean   have_d;
  int        d[LA_TPP_STEPS];
  gboolean   refresh;
  LaTensor  *refresh_ref, *refresh_motion;   /* NULL: stream's first frame / keep */
  double     dit_s;            /* the stages' step time so far (in-process only, not on the wire) */
} TppMsg;

void tpp_msg_free (TppMsg *m);

typedef struct _TppTransport TppTransport;
typedef struct {
  /* Hands m (owned) to the stage at the far end of `link` (1 <= link < n_stages, or 0 = input).
   * Blocks while that stage's queue is full.  FALSE (error set) once aborted. */
  gboolean  (*send)    (TppTransport *tr, int link, TppMsg *m, GError **error);
  /* Next message for stage `link`; NULL (error set) once aborted. */
  TppMsg   *(*recv)    (TppTransport *tr, int link, GError **error);
  /* The stream's first clean latent frame ([16, 1, h, w] host): `root` (the
   * last DiT stage) puts it, the other DiT stages get it.  With a collective
   * transport every DiT stage calls ref_share at the same point of its loop
   * (right after block 0); in-process, put returns at once and get waits. */
  gboolean  (*ref_share) (TppTransport *tr, int stage, int root, LaTensor **ref, GError **error);
  /* Wakes every waiter; later calls fail.  Safe from any thread, repeatable. */
  void      (*abort)   (TppTransport *tr);
  void      (*free)    (TppTransport *tr);
} TppTransportVt;

struct _TppTransport {
  const TppTransportVt *vt;
  gboolean collective_ref;   /* ref_share must be called by every DiT stage after block 0 */
};

TppTransport *tpp_transport_local_new (int n_links, int depth);
/* NCCL: one rank per distinct device of the plan; NULL + error when NCCL is
 * not built in or a device/communicator cannot be set up. */
TppTransport *tpp_transport_nccl_new (const LaTppConfig *cfg, const LaTppPlan *plan, int lat_c, int lat_f,
                                      int lat_h, int lat_w, GError **error);
