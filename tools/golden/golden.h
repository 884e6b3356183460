/* golden.h — replaying the official code's golden cases (the case format of
 * tests/golden/README.md).
 *
 * A case folder holds case.json and weights/inputs/outputs/intermediates
 * safetensors.  Each kind of case ("t5", "vae", "dit_stream", ...) has a run
 * function in golden-<kind>.c that loads what the case files say, runs the
 * engine component and calls golden_compare() for every tensor it checks.
 * Runners must take every size and hyper-parameter from the case, never
 * from constants tuned to one case.
 */
#pragma once
#include <json-glib/json-glib.h>
#include <liveavatar/liveavatar.h>
#include "la-checkpoint.h"

G_BEGIN_DECLS

typedef struct {
  char         *dir;
  const char   *kind;           /* case.json "case" */
  JsonParser   *parser;
  JsonObject   *obj;            /* case.json root */
  LaCheckpoint *weights, *inputs, *outputs, *intermediates;  /* NULL when the file is absent */
  double        tol_max_abs;    /* from tolerance_guidance, README defaults otherwise;
                                 * negative: that fraction of the expected tensor's max |x| */
  double        tol_rel_l2;
  int           stages;         /* --stages N (TPP), 0 = component default */
  int           remote;         /* --remote K: the last K DiT stages are loopback stage workers */
  LaBackend    *backend;
  gboolean      bf16;           /* --bf16: the DiT's GPU precision (bf16 weights, caches, activations) */
  gboolean      verbose;
  int           n_compared, n_failed;
} GoldenCase;

typedef gboolean (*GoldenRunFunc) (GoldenCase *c, GError **error);

/* Compares, prints "  ok|FAIL label max_abs=... rel_l2=... (tol ...)", counts.
 * Either tolerance < 0 uses the case's. Returns whether it passed. */
gboolean golden_compare_tol (GoldenCase *c, const char *label, LaTensor *actual,
                             LaTensor *expected, double max_abs, double rel_l2);
gboolean golden_compare (GoldenCase *c, const char *label, LaTensor *actual, LaTensor *expected);
/* Compares `actual` against outputs/intermediates tensor `name` (error if absent). */
gboolean golden_check (GoldenCase *c, LaCheckpoint *ref, const char *name, LaTensor *actual,
                       GError **error);

/* Borrowed tensor from a case file; error naming case dir, file and tensor when absent. */
LaTensor *golden_tensor (GoldenCase *c, LaCheckpoint *file, const char *name, GError **error);

/* case.json helpers (json-glib); error names the member path. */
JsonObject *golden_obj (JsonObject *o, const char *member, GError **error);
gint64      golden_int (JsonObject *o, const char *member, GError **error);
double      golden_double (JsonObject *o, const char *member, GError **error);

/* The run functions, one per component (golden-<kind>.c). */
gboolean golden_run_t5 (GoldenCase *c, GError **error);
gboolean golden_run_vae (GoldenCase *c, GError **error);
gboolean golden_run_wav2vec2 (GoldenCase *c, GError **error);
gboolean golden_run_audio (GoldenCase *c, GError **error);
gboolean golden_run_dit_stream (GoldenCase *c, GError **error);

G_END_DECLS
