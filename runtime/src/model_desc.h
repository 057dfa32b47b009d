// The static description of one compiled model: what the generated src/model.cpp defines and
// the fixed executor (runtime/executor.cpp) runs. Keeping the executor out of the generated
// file means a recompile only rebuilds the tables (a few constexpr arrays, no heavy headers).
#ifndef NPAS_MODEL_DESC_H_
#define NPAS_MODEL_DESC_H_

#include <cstddef>
#include <cstdint>

namespace npas {

struct LayerArgs;                             // npas/kernel_abi.h
using KernelFn = void (*)(const LayerArgs*);  // the same alias as npas/kernel_abi.h

enum class Src : std::uint8_t { kArena = 0, kWeights = 1 };

// A pointer of LayerArgs: a byte offset into the activation arena or the weights image.
struct Ref {
  Src src;
  std::int64_t offset;
};

struct LayerDesc {
  const char* name;
  const char* op;
  const char* kernel;
  const char* scheme;
  std::int64_t macs;
  KernelFn fn;  // nullptr: a view, its output aliases its input and nothing runs
  int n_in, n_out, n_w;
  int ref_begin;  // refs[ref_begin..]: n_in inputs, n_out outputs, n_w weights
  std::size_t scratch_bytes_per_thread;
};

struct TensorDesc {
  const char* name;
  int rank;
  const std::int64_t* shape;
  Ref ref;  // inputs: always in the arena; outputs: arena, or weights for a folded constant
  std::size_t bytes;
};

// OpenCL targets: one kernel launch per layer over device buffers (runtime/src/opencl_backend.cpp).
struct ClLayerDesc {
  const char* function;  // __kernel name in the program; nullptr for a view
  int dims;
  std::size_t global[3];
  std::size_t local[3];  // local[0] == 0: the driver chooses
};

struct ClDesc {
  bool fp16_storage;           // buffers hold half; kernels built with -DNPAS_FP16_STORAGE
  int num_sources;
  const char* const* sources;  // the prelude, then every distinct kernel
  const ClLayerDesc* layers;   // one per LayerDesc
  const char* program_hash;    // content hash of the sources (part of the binary cache key)
};

struct ModelDesc {
  const char* isa;
  // Checks the CPU runs the kernels' ISA; on failure names the missing feature.
  bool (*cpu_supported)(const char** missing);
  int num_layers;
  const LayerDesc* layers;
  const Ref* refs;
  int num_inputs;
  const TensorDesc* inputs;
  int num_outputs;
  const TensorDesc* outputs;
  std::int64_t arena_bytes;
  std::size_t scratch_bytes_per_thread;  // the largest over layers, 64-byte multiple
  // weights.bin: header (magic, version, header bytes, file bytes, hash) then the blobs.
  std::uint64_t weights_bytes;
  std::uint32_t weights_version;
  std::uint32_t weights_header_bytes;
  const unsigned char* weights_hash;  // 16 bytes
  const char* weights_hash_hex;
  const ClDesc* opencl;  // nullptr: CPU kernels (LayerDesc::fn)
};

// Defined by the generated src/model.cpp.
const ModelDesc& model_desc();

}  // namespace npas

#endif  // NPAS_MODEL_DESC_H_
