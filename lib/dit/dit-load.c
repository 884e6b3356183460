/* dit-load.c — the DiT of a model folder: config.json + weights (+ LoRA),
 * bound to a backend.  Shared by the session's model bundle and the TPP
 * stage worker, which both must hold exactly the same weights (the digest
 * lets them check that across processes). */
#include <string.h>
#include "la-dit.h"
#include <liveavatar/la-error.h>

LaDitModel *
la_dit_model_load (LaBackend *be, const char *model_dir, const char *lora, LaDitLoadInfo *info, GError **error)
{
  LaDitLoadInfo local;
  if (!info)
    info = &local;
  memset (info, 0, sizeof *info);
  g_autoptr (LaModelPaths) paths = la_model_paths_resolve (model_dir, lora, error);
  if (!paths || !la_dit_config_from_json_file (&info->cfg, paths->dit_config, error))
    return NULL;
  g_autoptr (LaCheckpoint) w = la_checkpoint_open (paths->dit_weights, error);
  if (!w)
    return NULL;
  if (paths->lora) {
    g_autoptr (LaCheckpoint) l = la_checkpoint_open (paths->lora, error);
    if (!l || !la_lora_merge (w, l, 0, &info->lora, error))
      return NULL;
  }
  g_autofree char *digest = la_checkpoint_digest (w);
  g_strlcpy (info->digest, digest, sizeof info->digest);
  return la_dit_model_new (be, &info->cfg, w, error);
}
