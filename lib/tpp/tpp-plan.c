/* tpp-plan.c — mapping a device list to TPP stages (docs/design/tpp.md §3).
 *
 * n_dit = min(n_devices, 4) DiT stages split the 4 steps into contiguous
 * runs, stage k getting steps [4k/n_dit, 4(k+1)/n_dit) (1: all; 2: {0,1}
 * {2,3}; 3: {0} {1} {2,3}; 4: one each).  The VAE (output) runs inline for
 * one device (everything in sequence), else as its own stage: on device 4
 * when there are 5 or more devices (the official 4 + 1), otherwise on a
 * second stream (thread) of the last DiT device.
 */
#include <liveavatar/la-tpp.h>
#include <liveavatar/la-error.h>
#include <string.h>

gboolean
la_tpp_plan (int n_devices, LaTppPlan *plan, GError **error)
{
  if (!plan || n_devices < 1) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "TPP plan: need at least one device (got %d)", n_devices);
    return FALSE;
  }
  memset (plan, 0, sizeof *plan);
  int n_dit = MIN (n_devices, LA_TPP_STEPS);
  for (int k = 0; k < n_dit; k++) {
    LaTppStagePlan *s = &plan->stage[k];
    s->device = k;
    s->first_step = LA_TPP_STEPS * k / n_dit;
    s->n_steps = LA_TPP_STEPS * (k + 1) / n_dit - s->first_step;
  }
  plan->n_stages = n_dit;
  if (n_devices == 1) {
    plan->stage[0].output = TRUE;
  } else {
    LaTppStagePlan *v = &plan->stage[plan->n_stages++];
    v->device = n_devices > LA_TPP_STEPS ? LA_TPP_STEPS : n_dit - 1;
    v->first_step = LA_TPP_STEPS;
    v->n_steps = 0;
    v->output = TRUE;
  }
  return TRUE;
}

char *
la_tpp_plan_describe (const LaTppPlan *plan)
{
  GString *s = g_string_new (NULL);
  for (int k = 0; k < plan->n_stages; k++) {
    const LaTppStagePlan *p = &plan->stage[k];
    if (k)
      g_string_append (s, "; ");
    g_string_append_printf (s, "stage %d: device %d, ", k, p->device);
    if (p->n_steps == 0)
      g_string_append (s, "VAE");
    else if (p->n_steps == 1)
      g_string_append_printf (s, "step %d", p->first_step);
    else
      g_string_append_printf (s, "steps %d-%d", p->first_step, p->first_step + p->n_steps - 1);
    if (p->n_steps && p->output)
      g_string_append (s, " + VAE");
  }
  return g_string_free (s, FALSE);
}
