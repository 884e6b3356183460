/* liveavatar-stage — a TPP stage worker: holds the DiT of a model folder and
 * runs pipeline stages for a head (the element or liveavatar-render with
 * devices listing "tcp://HOST:PORT"), one stream at a time (docs/tpp.md).
 *
 *   liveavatar-stage --model DIR [--lora FILE] [--weights file|f32|bf16] [--listen HOST:PORT] [--threads N]
 *                    [--streams N | --once]
 *
 * Prints "listening on tcp://HOST:PORT" once ready (port 0 picks a free
 * port, so launchers and tests read the line).  Up to --streams streams
 * (pipelines) are served at once, each with its own KV caches, sharing the
 * model; a failed stream is logged and the others go on.  --once serves one
 * stream and exits (status 0 when it ended cleanly).  No authentication: keep the default
 * loopback address or bind a private interface.
 */
#include <stdio.h>
#include <stdlib.h>
#include <liveavatar/liveavatar.h>
#include <liveavatar/la-tpp.h>

static void
log_stream (gboolean ok, const GError *error, gpointer user)
{
  if (ok)
    printf ("liveavatar-stage: stream ended\n");
  else
    fprintf (stderr, "liveavatar-stage: stream failed: %s\n", error->message);
  fflush (stdout);
}

int
main (int argc, char **argv)
{
  g_autofree char *model_dir = NULL, *lora = NULL, *listen = NULL, *device = NULL, *weights = NULL;
  int threads = 0, streams = 4;
  gboolean once = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "model folder (the same on every host)", "DIR" },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME, &lora, "Live-Avatar LoRA to merge (as on the head)", "FILE" },
    { "weights", 0, 0, G_OPTION_ARG_STRING, &weights, "Resident precision, as on the head: file (default), f32 or bf16", "W" },
    { "listen", 'l', 0, G_OPTION_ARG_STRING, &listen, "address to listen on (default 127.0.0.1:7600; port 0: any)",
      "HOST:PORT" },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "backend: cpu (default) or cuda:N", "DEV" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "CPU threads per op (0: all cores)", "N" },
    { "streams", 's', 0, G_OPTION_ARG_INT, &streams, "streams served at once (4)", "N" },
    { "once", 0, 0, G_OPTION_ARG_NONE, &once, "serve one stream, then exit", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("- serve TPP pipeline stages over TCP");
  g_option_context_add_main_entries (oc, entries, NULL);
  GError *e = NULL;
  if (!g_option_context_parse (oc, &argc, &argv, &e) || !model_dir) {
    fprintf (stderr, "liveavatar-stage: %s\n", e ? e->message : "--model is required");
    return 2;
  }
  LaWeights wt = LA_WEIGHTS_FILE;
  LaTppWorker *w = la_weights_from_string (weights, &wt, &e)
                   ? la_tpp_worker_open (model_dir, lora, wt, device, threads, listen ? listen : "127.0.0.1:7600", &e)
                   : NULL;
  if (!w) {
    fprintf (stderr, "liveavatar-stage: %s\n", e->message);
    g_error_free (e);
    return 1;
  }
  g_autofree char *what = la_tpp_worker_describe (w);
  printf ("liveavatar-stage: %s (%s) listening on %s\n", model_dir, what, la_tpp_worker_get_address (w));
  fflush (stdout);
  int status = 0;
  if (once) {
    if (!la_tpp_worker_serve_one (w, NULL, &e)) {
      fprintf (stderr, "liveavatar-stage: stream failed: %s\n", e->message);
      g_clear_error (&e);
      status = 1;
    }
  } else if (!la_tpp_worker_run (w, streams, log_stream, NULL, NULL, &e)) {
    fprintf (stderr, "liveavatar-stage: %s\n", e->message);
    g_clear_error (&e);
    status = 1;
  }
  la_tpp_worker_free (w);
  return status;
}
