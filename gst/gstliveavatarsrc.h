/* GStreamer
 * Copyright (C) 2025 gst-liveavatar contributors
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2 of the License, or (at your option) any later version.
 */
#ifndef __GST_LIVE_AVATAR_SRC_H__
#define __GST_LIVE_AVATAR_SRC_H__

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_LIVE_AVATAR_SRC (gst_live_avatar_src_get_type ())
G_DECLARE_FINAL_TYPE (GstLiveAvatarSrc, gst_live_avatar_src, GST,
    LIVE_AVATAR_SRC, GstElement)

/**
 * GstLiveAvatarSrcLeaky:
 * @GST_LIVE_AVATAR_SRC_LEAKY_AUTO: none when upstream is not live,
 *   downstream when it is
 * @GST_LIVE_AVATAR_SRC_LEAKY_NONE: block upstream when the audio queue is
 *   full, never drop
 * @GST_LIVE_AVATAR_SRC_LEAKY_DOWNSTREAM: drop the oldest queued audio
 */
typedef enum
{
  GST_LIVE_AVATAR_SRC_LEAKY_AUTO,
  GST_LIVE_AVATAR_SRC_LEAKY_NONE,
  GST_LIVE_AVATAR_SRC_LEAKY_DOWNSTREAM,
} GstLiveAvatarSrcLeaky;

/**
 * GstLiveAvatarSrcState:
 * Runtime state, readable through the `state` property.
 */
typedef enum
{
  GST_LIVE_AVATAR_SRC_STATE_NULL,
  GST_LIVE_AVATAR_SRC_STATE_LOADING,
  GST_LIVE_AVATAR_SRC_STATE_READY,
  GST_LIVE_AVATAR_SRC_STATE_IDLE,
  GST_LIVE_AVATAR_SRC_STATE_SPEAKING,
  GST_LIVE_AVATAR_SRC_STATE_ERROR,
} GstLiveAvatarSrcState;

/**
 * GstLiveAvatarSrcIdle:
 * @GST_LIVE_AVATAR_SRC_IDLE_SILENCE: a live upstream silent for longer than
 *   idle-timeout is taken as silence on the clock: the avatar keeps moving
 * @GST_LIVE_AVATAR_SRC_IDLE_FREEZE: the last frame is repeated until audio
 *   comes
 */
typedef enum
{
  GST_LIVE_AVATAR_SRC_IDLE_SILENCE,
  GST_LIVE_AVATAR_SRC_IDLE_FREEZE,
} GstLiveAvatarSrcIdle;

/**
 * GstLiveAvatarSrcWeights:
 * @GST_LIVE_AVATAR_SRC_WEIGHTS_FILE: linear weights in the checkpoint's
 *   precision (bf16 for the published checkpoints)
 * @GST_LIVE_AVATAR_SRC_WEIGHTS_F32: everything f32 (reference precision)
 * @GST_LIVE_AVATAR_SRC_WEIGHTS_BF16: linear weights bf16
 * @GST_LIVE_AVATAR_SRC_WEIGHTS_FP8: CUDA devices only: the DiT's eligible
 *   linears e4m3 with a per-tensor scale, the rest bf16
 *
 * Values match LaWeights (la-weights.h).
 */
typedef enum
{
  GST_LIVE_AVATAR_SRC_WEIGHTS_FILE,
  GST_LIVE_AVATAR_SRC_WEIGHTS_F32,
  GST_LIVE_AVATAR_SRC_WEIGHTS_BF16,
  GST_LIVE_AVATAR_SRC_WEIGHTS_FP8,
} GstLiveAvatarSrcWeights;

/**
 * GstLiveAvatarSrcAudioMode:
 * How wav2vec2 sees the audio (see la-session.h).
 */
typedef enum
{
  GST_LIVE_AVATAR_SRC_AUDIO_LIVE,
  GST_LIVE_AVATAR_SRC_AUDIO_OFFLINE,
} GstLiveAvatarSrcAudioMode;

GST_ELEMENT_REGISTER_DECLARE (liveavatarsrc);

G_END_DECLS
#endif /* __GST_LIVE_AVATAR_SRC_H__ */
