// The OpenCL side of a compiled model (targets opencl and opencl-android): the executor hands
// a model whose tables carry an npas::ClDesc to ClBackend, which owns every OpenCL object.
//
// OpenCL is loaded at run time (dlopen of libOpenCL.so and the usual Android vendor paths), so
// one library runs on any phone and builds with no OpenCL SDK: runtime/src/npas_cl.h declares
// the few entry points used.
#ifndef NPAS_OPENCL_BACKEND_H_
#define NPAS_OPENCL_BACKEND_H_

#include <memory>
#include <string>

#include "model_desc.h"

namespace npas {

class ClBackend {
 public:
  // Loads OpenCL, picks the device (NPAS_OPENCL_DEVICE), uploads the weights image, builds the
  // program (or loads its binary from the cache: NPAS_OPENCL_CACHE_DIR, default
  // <weights dir>/opencl-cache) and binds every layer's kernel. nullptr and *error on failure.
  static std::unique_ptr<ClBackend> create(const ModelDesc& d, const unsigned char* weights,
                                           const char* weights_path, std::string* error);
  ~ClBackend();

  // One inference: inputs uploaded, every layer enqueued in order, outputs read back. With
  // profile, layer_ms[i] is layer i's kernel time from its OpenCL event (0 for views).
  bool run(const float* const* inputs, float* const* outputs, bool profile, double* layer_ms,
           std::string* error);

  // "platform=...; device=...; storage=fp32|fp16; program=built|cached; build_ms=..."
  const std::string& info() const;

  struct State;

 private:
  explicit ClBackend(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace npas

#endif  // NPAS_OPENCL_BACKEND_H_
