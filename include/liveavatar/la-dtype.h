/* la-dtype.h — element types and scalar conversions.
 *
 * Conversions to the narrow types round to nearest, ties to even, as
 * PyTorch does.  e4m3 (the "fn" variant: no infinities, one NaN pattern)
 * saturates to +-448 the way torch's clamp-then-cast does in the FP8 path;
 * NaN stays NaN.
 */
#pragma once
#include <glib.h>
#include <stdint.h>
#include <stddef.h>

G_BEGIN_DECLS

typedef enum {
  LA_DTYPE_F32,
  LA_DTYPE_BF16,
  LA_DTYPE_F16,
  LA_DTYPE_F8_E4M3,
  LA_DTYPE_F64,
  LA_DTYPE_I64,
  LA_DTYPE_I32,
  LA_DTYPE_I16,
  LA_DTYPE_I8,
  LA_DTYPE_U8,
  LA_DTYPE_BOOL,
  LA_DTYPE_COUNT
} LaDType;

size_t       la_dtype_size (LaDType t);
const char  *la_dtype_name (LaDType t);          /* safetensors spelling: "F32", "BF16", ... */
gboolean     la_dtype_from_name (const char *name, LaDType *out);
gboolean     la_dtype_is_float (LaDType t);

float    la_bf16_to_f32 (uint16_t h);
uint16_t la_f32_to_bf16 (float f);
float    la_f16_to_f32 (uint16_t h);
uint16_t la_f32_to_f16 (float f);
float    la_e4m3_to_f32 (uint8_t v);
uint8_t  la_f32_to_e4m3 (float f);               /* saturating, see above */

/* Round-trip helpers: the value a float takes after storing in a narrow type. */
static inline float la_round_bf16 (float f) { return la_bf16_to_f32 (la_f32_to_bf16 (f)); }
static inline float la_round_f16 (float f) { return la_f16_to_f32 (la_f32_to_f16 (f)); }

/* Converts n elements between any two dtypes (floats via f32/f64, ints by value). */
void la_convert (void *dst, LaDType dst_t, const void *src, LaDType src_t, size_t n);

G_END_DECLS
