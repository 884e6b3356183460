/* dit-load.c — the DiT of a model folder: config.json + weights (+ LoRA),
 * bound to a backend.  Shared by the session's model bundle and the TPP
 * stage worker, which both must hold exactly the same weights (the digest
 * lets them check that across processes).
 *
 * One copy: the LoRA is planned first (checks only), then every weight is
 * bound — copied into its resident dtype, merged if targeted, its file
 * pages handed back — so at any moment the process holds the resident
 * weights so far plus one tensor in flight, never a merged checkpoint. */
#include <string.h>
#include "la-dit.h"
#include <liveavatar/la-error.h>

LaDitModel *
la_dit_model_load (LaBackend *be, const char *model_dir, const char *lora, LaDitLoadInfo *info, GError **error)
{
  return la_dit_model_load_full (be, model_dir, lora, LA_WEIGHTS_FILE, info, error);
}

LaDitModel *
la_dit_model_load_full (LaBackend *be, const char *model_dir, const char *lora, LaWeights weights,
                        LaDitLoadInfo *info, GError **error)
{
  LaDitLoadInfo local;
  if (!info)
    info = &local;
  memset (info, 0, sizeof *info);
  info->weights = weights;
  g_autoptr (LaModelPaths) paths = la_model_paths_resolve (model_dir, lora, error);
  if (!paths || !la_dit_config_from_json_file (&info->cfg, paths->dit_config, error))
    return NULL;
  g_autoptr (LaCheckpoint) w = la_checkpoint_open (paths->dit_weights, error);
  if (!w)
    return NULL;
  g_autoptr (LaLoraPlan) plan = NULL;
  GChecksum *h = g_checksum_new (G_CHECKSUM_SHA256);
  {
    /* before binding: the bound tensors leave the checkpoint */
    g_autofree char *d = la_checkpoint_digest (w);
    g_checksum_update (h, (const guchar *) d, -1);
  }
  if (paths->lora) {
    g_autoptr (LaCheckpoint) l = la_checkpoint_open (paths->lora, error);
    if (!l || !(plan = la_lora_plan_new (w, l, 0, error))) {
      g_checksum_free (h);
      return NULL;
    }
    g_autofree char *d = la_checkpoint_digest (l);
    la_lora_plan_set_release (plan, l);
    g_checksum_update (h, (const guchar *) "|lora|", -1);
    g_checksum_update (h, (const guchar *) d, -1);
  }
  g_checksum_update (h, (const guchar *) "|weights|", -1);
  g_checksum_update (h, (const guchar *) la_weights_to_string (weights), -1);
  g_strlcpy (info->digest, g_checksum_get_string (h), sizeof info->digest);
  g_checksum_free (h);

  LaWeightBinder wb;
  la_weight_binder_init (&wb, be, w, weights);
  wb.lora = plan;
  wb.release = TRUE;
  LaDitModel *m = la_dit_model_new_bound (&info->cfg, &wb, error);
  if (m && plan && !la_lora_plan_finish (plan, &info->lora, error))
    g_clear_pointer (&m, la_dit_model_free);
  memcpy (info->resident, wb.bytes, sizeof info->resident);
  return m;
}
