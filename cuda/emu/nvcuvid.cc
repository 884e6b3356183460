/* nvcuvid.cc — libnvcuvid.so.1 of the emulated device: NVDEC with no
 * decoder.  GStreamer 1.22's nvcodec registers its CUDA memory elements
 * (cudaupload, cudadownload, cudaconvert...) only when the NVENC or the
 * NVDEC library loads (sys/nvcodec/plugin.c returns early otherwise), so
 * the emulated build ships this one next to its libcuda.so.1: every entry
 * point the 1.22 loader resolves is here and answers
 * CUDA_ERROR_NOT_SUPPORTED (801), so no decoder is registered (no codec
 * reports decode capabilities) while the memory elements are.  Built and
 * found like libcuda.so.1 (cuda/emu/meson.build), never installed.
 */
#define NOT_EMULATED(name) \
  extern "C" int name (...) { return 801; /* CUDA_ERROR_NOT_SUPPORTED */ }

NOT_EMULATED (cuvidCreateDecoder)
NOT_EMULATED (cuvidCreateVideoParser)
NOT_EMULATED (cuvidCtxLock)
NOT_EMULATED (cuvidCtxLockCreate)
NOT_EMULATED (cuvidCtxLockDestroy)
NOT_EMULATED (cuvidCtxUnlock)
NOT_EMULATED (cuvidDecodePicture)
NOT_EMULATED (cuvidDestroyDecoder)
NOT_EMULATED (cuvidDestroyVideoParser)
NOT_EMULATED (cuvidGetDecoderCaps)
NOT_EMULATED (cuvidMapVideoFrame64)
NOT_EMULATED (cuvidParseVideoData)
NOT_EMULATED (cuvidUnmapVideoFrame64)
