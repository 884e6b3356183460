/* golden.c — loading golden cases and comparing tensors against them. */
#include "golden.h"
#include <math.h>
#include <string.h>

gboolean
golden_compare_tol (GoldenCase *c, const char *label, LaTensor *actual, LaTensor *expected,
                    double tol_abs, double tol_rel)
{
  if (tol_abs < 0)
    tol_abs = c->tol_max_abs;
  if (tol_rel < 0)
    tol_rel = c->tol_rel_l2;
  c->n_compared++;
  int64_t n = la_tensor_numel (expected);
  if (!actual || la_tensor_numel (actual) != n) {
    g_autofree char *es = la_shape_to_string (expected->ndim, expected->shape);
    g_autofree char *as = actual ? la_shape_to_string (actual->ndim, actual->shape) : g_strdup ("(none)");
    g_print ("  FAIL %-48s shape %s, expected %s\n", label, as, es);
    c->n_failed++;
    return FALSE;
  }
  g_autoptr (LaTensor) a = la_tensor_to_dtype (actual, LA_DTYPE_F64);
  g_autoptr (LaTensor) e = la_tensor_to_dtype (expected, LA_DTYPE_F64);
  const double *av = a->data, *ev = e->data;
  double max_abs = 0, d2 = 0, e2 = 0;
  gboolean finite = TRUE;
  for (int64_t i = 0; i < n; i++) {
    double d = av[i] - ev[i];
    if (!isfinite (av[i]) && !(av[i] == ev[i]))
      finite = FALSE;
    max_abs = MAX (max_abs, fabs (d));
    d2 += d * d;
    e2 += ev[i] * ev[i];
  }
  if (tol_abs < 0) {
    /* a case tolerance relative to the expected range (--bf16) */
    double emax = 0;
    for (int64_t i = 0; i < n; i++)
      emax = MAX (emax, fabs (ev[i]));
    tol_abs = -tol_abs * emax;
  }
  double rel = e2 > 0 ? sqrt (d2 / e2) : sqrt (d2);
  gboolean ok = finite && max_abs <= tol_abs && rel <= tol_rel;
  if (!ok)
    c->n_failed++;
  if (!ok || c->verbose)
    g_print ("  %-4s %-48s max_abs=%.3g rel_l2=%.3g (tol %.1g / %.1g)%s\n", ok ? "ok" : "FAIL", label,
             max_abs, rel, tol_abs, tol_rel, finite ? "" : " non-finite");
  return ok;
}

gboolean
golden_compare (GoldenCase *c, const char *label, LaTensor *actual, LaTensor *expected)
{
  return golden_compare_tol (c, label, actual, expected, -1, -1);
}

LaTensor *
golden_tensor (GoldenCase *c, LaCheckpoint *file, const char *name, GError **error)
{
  if (!file) {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND, "%s: the case has no file holding '%s'", c->dir, name);
    return NULL;
  }
  return la_checkpoint_require (file, name, -1, NULL, error);
}

gboolean
golden_check (GoldenCase *c, LaCheckpoint *ref, const char *name, LaTensor *actual, GError **error)
{
  LaTensor *e = golden_tensor (c, ref, name, error);
  if (!e)
    return FALSE;
  golden_compare (c, name, actual, e);
  return TRUE;
}

JsonObject *
golden_obj (JsonObject *o, const char *member, GError **error)
{
  JsonNode *n = o ? json_object_get_member (o, member) : NULL;
  if (!n || !JSON_NODE_HOLDS_OBJECT (n)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "case.json: '%s' is missing or not an object", member);
    return NULL;
  }
  return json_node_get_object (n);
}

gint64
golden_int (JsonObject *o, const char *member, GError **error)
{
  JsonNode *n = o ? json_object_get_member (o, member) : NULL;
  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "case.json: '%s' is missing or not an integer", member);
    return 0;
  }
  return json_node_get_int (n);
}

double
golden_double (JsonObject *o, const char *member, GError **error)
{
  JsonNode *n = o ? json_object_get_member (o, member) : NULL;
  if (!n || !JSON_NODE_HOLDS_VALUE (n) ||
      (json_node_get_value_type (n) != G_TYPE_DOUBLE && json_node_get_value_type (n) != G_TYPE_INT64)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "case.json: '%s' is missing or not a number", member);
    return 0;
  }
  return json_node_get_double (n);
}
