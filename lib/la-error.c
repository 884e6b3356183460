#include "liveavatar/la-error.h"

G_DEFINE_QUARK (la-error-quark, la_error)
