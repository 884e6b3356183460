/* emu-exec.h — between the emulator's runtime (runtime.cc) and its kernel
 * executor (exec.cc); not seen by the emulated code. */
#pragma once
#include <cstddef>
#include <functional>
#include <cuda_runtime.h>

/* Runs every block of the grid on the calling OS thread (exec.cc). */
void la_emu_run_grid (const char *name, const void *kernel, dim3 grid, dim3 block, size_t shmem,
                      const std::function<void ()> &body);
/* LA_EMU_ORDER=reverse: blocks and threads in reverse order. */
bool la_emu_order_reverse (void);
/* A fiber stack's guard page, so the fault handler can name an overflow (runtime.cc). */
void la_emu_register_stack (void *lo, size_t guard);
extern "C" const char *la_emu_current_kernel (void);
/* Tests: blocks and threads in reverse (1) or forward (0) order from now on,
 * whatever LA_EMU_ORDER says; -1 goes back to LA_EMU_ORDER. */
extern "C" void la_emu_set_order (int reverse);
