// What every generated layer kernel sees. A kernel is `extern "C" void ENTRY(const
// npas::LayerArgs*)` in its own translation unit; the generated executor fills LayerArgs.
#ifndef NPAS_KERNEL_ABI_H_
#define NPAS_KERNEL_ABI_H_

#include <cstddef>
#include <cstdint>

#include "npas/threadpool.h"

namespace npas {

constexpr int kMaxLayerInputs = 16;   // concat can take many activations
constexpr int kMaxLayerOutputs = 16;  // split
constexpr int kMaxLayerWeights = 8;

struct LayerArgs {
  const float* in[kMaxLayerInputs];    // activation inputs, in the layer's input order
  float* out[kMaxLayerOutputs];        // outputs
  const float* w[kMaxLayerWeights];    // packed constants from weights.bin (64-byte aligned)
  float* scratch;                      // threads * scratch_bytes_per_thread, 64-byte aligned
  std::size_t scratch_bytes_per_thread;
  ThreadPool* pool;                    // never null; pool->size() >= 1
};

using KernelFn = void (*)(const LayerArgs*);

}  // namespace npas

#endif  // NPAS_KERNEL_ABI_H_
