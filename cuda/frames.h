/* frames.h — the video-output ops of cuda/frames.cu (their contract:
 * la-backend-impl.h, frames_to_rgba8 and rgba8_to_nv12), for the CUDA ops
 * table of backend-cuda.cu. */
#pragma once
#include "cuda-internal.h"

extern "C" void la_cuda_frames_to_rgba8 (LaBackend *be, LaTensor *y, const LaTensor *x);
extern "C" void la_cuda_rgba8_to_nv12 (LaBackend *be, LaTensor *y, const LaTensor *x, int matrix);
