/* GStreamer
 * Copyright (C) 2025 gst-liveavatar contributors
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2 of the License, or (at your option) any later version.
 *
 * plugin.c: registers liveavatarsrc.  Registration never touches a GPU or
 * the model, so the element is always present in the registry; device and
 * model problems surface at NULL->READY (unlike nvcodec, which registers
 * nothing without a driver and gets that cached).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>
#include "gstliveavatarsrc.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  return GST_ELEMENT_REGISTER (liveavatarsrc, plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR,
    GST_VERSION_MINOR,
    liveavatar,
    "Live Avatar: speech-driven talking-avatar video generation",
    plugin_init, VERSION, "LGPL", GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
