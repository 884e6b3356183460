/* liveavatar.h — the public API of the gst-liveavatar engine (umbrella header). */
#pragma once
#include "la-error.h"
#include "la-dtype.h"
#include "la-tensor.h"
#include "la-backend.h"
#include "la-weights.h"
#include "la-session.h"
