// The executor of a compiled model: the C ABI of npas_model.h over the tables of the generated
// src/model.cpp (npas::model_desc()). Every activation has a fixed offset in one arena (planned
// at compile time by npas/codegen/emit.py), so LayerArgs are computed once at create time and a
// run is a plain loop over kernel entries.
//
// This file and model.cpp are compiled WITHOUT the kernels' ISA flags, so the CPU check in
// npas_model_create runs before any instruction the CPU might lack.
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "model_desc.h"
#include "npas/kernel_abi.h"
#include "npas/threadpool.h"
#include "npas_model.h"
#if defined(NPAS_OPENCL)
#include "opencl_backend.h"
#endif

#define NPAS_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using npas::ModelDesc;
using npas::Ref;
using npas::Src;

constexpr std::size_t kAlign = 64;
constexpr char kWeightsMagic[8] = {'N', 'P', 'A', 'S', 'W', 'T', 'S', '\0'};

thread_local char t_error[16384];  // room for an OpenCL build log  // trivially destructible: safe to dlclose

void set_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void set_error(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(t_error, sizeof t_error, fmt, args);
  va_end(args);
}

struct Free {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<unsigned char, Free>;

// Zeroed, 64-byte aligned, never null (even for 0 bytes), so pointers into it are valid.
AlignedBuffer aligned_bytes(std::size_t n) {
  const std::size_t size = n == 0 ? kAlign : (n + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, size);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, size);
  return AlignedBuffer(static_cast<unsigned char*>(p));
}

// Reads the whole weights file into aligned memory after checking that it is the one this
// library was compiled with (the header's content hash against the embedded one).
bool load_weights(const ModelDesc& d, const char* path, AlignedBuffer* out) {
  if (path == nullptr) {
    set_error("npas_model_create: weights path is NULL");
    return false;
  }
  std::FILE* f = std::fopen(path, "rb");
  if (f == nullptr) {
    set_error("cannot open weights file '%s': %s", path, std::strerror(errno));
    return false;
  }
  std::vector<unsigned char> header(d.weights_header_bytes);
  const std::size_t got = std::fread(header.data(), 1, header.size(), f);
  std::uint32_t version = 0, header_bytes = 0;
  std::uint64_t file_bytes = 0;
  bool ok = false;
  if (got == header.size() && header.size() >= 40) {
    std::memcpy(&version, header.data() + 8, 4);
    std::memcpy(&header_bytes, header.data() + 12, 4);
    std::memcpy(&file_bytes, header.data() + 16, 8);
  }
  if (got != header.size() || std::memcmp(header.data(), kWeightsMagic, 8) != 0) {
    set_error("'%s' is not an npas weights file (bad header)", path);
  } else if (version != d.weights_version || header_bytes != d.weights_header_bytes) {
    set_error("weights file '%s' has format version %u; this library reads version %u", path,
              version, d.weights_version);
  } else if (std::memcmp(header.data() + 24, d.weights_hash, 16) != 0 ||
             file_bytes != d.weights_bytes) {
    char hex[33];
    for (int i = 0; i < 16; ++i) std::snprintf(hex + 2 * i, 3, "%02x", header[24 + i]);
    set_error(
        "weights file '%s' does not belong to this model library (its hash is %s, the "
        "library was compiled with %s); use the weights.bin written together with this "
        "libnpas_model.so, or recompile",
        path, hex, d.weights_hash_hex);
  } else {
    ok = true;
  }
  if (ok) {
    *out = aligned_bytes(d.weights_bytes);
    std::memcpy(out->get(), header.data(), header.size());
    const std::size_t rest = d.weights_bytes - header.size();
    if (std::fread(out->get() + header.size(), 1, rest, f) != rest || std::fgetc(f) != EOF) {
      set_error("weights file '%s' is truncated or has trailing bytes (expected %llu bytes)", path,
                static_cast<unsigned long long>(d.weights_bytes));
      ok = false;
    }
  }
  std::fclose(f);
  return ok;
}

// Marker no-ops for instruction-counting emulation (NPAS_PROFILE_MARKERS). HINT immediates
// 125..127 are unallocated: every Armv8/v9 core executes them as NOP.
#if defined(__aarch64__)
#define NPAS_MARK(imm) __asm__ __volatile__("hint #" #imm ::: "memory")
#else
#define NPAS_MARK(imm) ((void)0)
#endif

// Any non-zero value that sets no known bit keeps its historical meaning: time layers.
int profile_bits(int on) {
  if (on == 0) return 0;
  const int known = on & (NPAS_PROFILE_TIMES | NPAS_PROFILE_MARKERS);
  return known != 0 ? known : NPAS_PROFILE_TIMES;
}

}  // namespace

struct npas_model {
  const ModelDesc& d = npas::model_desc();
  AlignedBuffer weights;
  AlignedBuffer arena;
  AlignedBuffer scratch;
  std::unique_ptr<npas::ThreadPool> pool;
  std::vector<npas::LayerArgs> args;
  std::vector<double> layer_ms;
  int profile = 0;  // NPAS_PROFILE_* bits
  std::mutex mu;  // one run at a time: runs share the arena
#if defined(NPAS_OPENCL)
  std::unique_ptr<npas::ClBackend> cl;  // OpenCL targets: the layers run there
#endif
  std::string device_info = "cpu";

  const float* resolve(const Ref& r) const {
    unsigned char* base = r.src == Src::kArena ? arena.get() : weights.get();
    return reinterpret_cast<const float*>(base + r.offset);
  }

  // LayerArgs hold raw pointers into the arena, weights and scratch: rebuilt whenever one moves.
  void build_args() {
    if (d.opencl != nullptr) return;  // OpenCL layers bind device buffers, not LayerArgs
    args.assign(d.num_layers, npas::LayerArgs{});
    for (int i = 0; i < d.num_layers; ++i) {
      const npas::LayerDesc& l = d.layers[i];
      npas::LayerArgs& a = args[i];
      const Ref* r = d.refs + l.ref_begin;
      for (int k = 0; k < l.n_in; ++k) a.in[k] = resolve(*r++);
      for (int k = 0; k < l.n_out; ++k) a.out[k] = const_cast<float*>(resolve(*r++));
      for (int k = 0; k < l.n_w; ++k) a.w[k] = resolve(*r++);
      a.scratch = reinterpret_cast<float*>(scratch.get());
      a.scratch_bytes_per_thread = l.scratch_bytes_per_thread;
      a.pool = pool.get();
    }
  }

  void set_threads(int threads) {
    if (threads <= 0) threads = 1;
    pool.reset(new npas::ThreadPool(threads));
    scratch = aligned_bytes(d.scratch_bytes_per_thread * static_cast<std::size_t>(threads));
    build_args();
  }
};

NPAS_EXPORT npas_model* npas_model_create(const char* weights_path, const npas_options* options) {
  t_error[0] = '\0';
  const ModelDesc& d = npas::model_desc();
  const char* missing = "?";
  if (!d.cpu_supported(&missing)) {
#if defined(__aarch64__)
    const char* advice = "recompile the model with NPAS_ISA=scalar for this older core";
#else
    const char* advice =
        "recompile the model on this machine (target 'host' detects the CPU) or force a lower "
        "ISA with NPAS_ISA=avx2|scalar when compiling";
#endif
    set_error("this model library was compiled for %s, but this CPU lacks '%s'; %s", d.isa,
              missing, advice);
    return nullptr;
  }
  try {
    std::unique_ptr<npas_model> m(new npas_model);
    if (!load_weights(d, weights_path, &m->weights)) return nullptr;
    // OpenCL models keep their activations on the device: no host arena.
    m->arena = aligned_bytes(d.opencl != nullptr ? 0 : static_cast<std::size_t>(d.arena_bytes));
    m->layer_ms.assign(d.num_layers, 0.0);
    m->profile = options != nullptr ? profile_bits(options->profile) : 0;
    m->set_threads(options != nullptr ? options->threads : 1);
    m->device_info = std::string("cpu: ") + d.isa;
    if (d.opencl != nullptr) {
#if defined(NPAS_OPENCL)
      std::string error;
      m->cl = npas::ClBackend::create(d, m->weights.get(), weights_path, &error);
      if (!m->cl) {
        set_error("%s", error.c_str());
        return nullptr;
      }
      m->device_info = "opencl: " + m->cl->info();
#else
      set_error("this model has OpenCL kernels but its executor was built without NPAS_OPENCL");
      return nullptr;
#endif
    }
    return m.release();
  } catch (const std::exception& e) {
    set_error("npas_model_create: %s", e.what());
  } catch (...) {
    set_error("npas_model_create: unknown exception");
  }
  return nullptr;
}

NPAS_EXPORT void npas_model_destroy(npas_model* model) { delete model; }

NPAS_EXPORT int npas_model_run(npas_model* model, const float* const* inputs,
                               float* const* outputs) {
  if (model == nullptr) {
    set_error("npas_model_run: NULL model");
    return 1;
  }
  const ModelDesc& d = model->d;
  if ((d.num_inputs > 0 && inputs == nullptr) || (d.num_outputs > 0 && outputs == nullptr)) {
    set_error("npas_model_run: NULL inputs or outputs array");
    return 1;
  }
  for (int i = 0; i < d.num_inputs; ++i) {
    if (inputs[i] == nullptr) {
      set_error("npas_model_run: input %d (%s) is NULL", i, d.inputs[i].name);
      return 1;
    }
  }
  for (int i = 0; i < d.num_outputs; ++i) {
    if (outputs[i] == nullptr) {
      set_error("npas_model_run: output %d (%s) is NULL", i, d.outputs[i].name);
      return 1;
    }
  }
  std::lock_guard<std::mutex> lock(model->mu);
#if defined(NPAS_OPENCL)
  if (model->cl) {
    std::string error;
    const bool profile = (model->profile & NPAS_PROFILE_TIMES) != 0;
    if (!model->cl->run(inputs, outputs, profile, model->layer_ms.data(), &error)) {
      set_error("npas_model_run: %s", error.c_str());
      return 1;
    }
    return 0;
  }
#endif
  try {
    for (int i = 0; i < d.num_inputs; ++i) {
      std::memcpy(model->arena.get() + d.inputs[i].ref.offset, inputs[i], d.inputs[i].bytes);
    }
    using Clock = std::chrono::steady_clock;
    const bool profile = (model->profile & NPAS_PROFILE_TIMES) != 0;
    const bool markers = (model->profile & NPAS_PROFILE_MARKERS) != 0;
    if (markers) NPAS_MARK(125);
    for (int i = 0; i < d.num_layers; ++i) {
      if (markers) NPAS_MARK(126);  // before every layer, views too: marker k is layer k
      const npas::KernelFn fn = d.layers[i].fn;
      if (fn == nullptr) continue;
      if (profile) {
        const auto t0 = Clock::now();
        fn(&model->args[i]);
        const auto t1 = Clock::now();
        model->layer_ms[i] = std::chrono::duration<double, std::milli>(t1 - t0).count();
      } else {
        fn(&model->args[i]);
      }
    }
    if (markers) NPAS_MARK(127);
    for (int i = 0; i < d.num_outputs; ++i) {
      std::memcpy(outputs[i], model->resolve(d.outputs[i].ref), d.outputs[i].bytes);
    }
  } catch (const std::exception& e) {
    set_error("npas_model_run: %s", e.what());
    return 1;
  } catch (...) {
    set_error("npas_model_run: unknown exception");
    return 1;
  }
  return 0;
}

NPAS_EXPORT int npas_model_set_threads(npas_model* model, int threads) {
  if (model == nullptr) {
    set_error("npas_model_set_threads: NULL model");
    return 1;
  }
  std::lock_guard<std::mutex> lock(model->mu);
  try {
    model->set_threads(threads);
  } catch (const std::exception& e) {
    set_error("npas_model_set_threads: %s", e.what());
    return 1;
  }
  return 0;
}

NPAS_EXPORT int npas_model_set_profiling(npas_model* model, int on) {
  if (model == nullptr) {
    set_error("npas_model_set_profiling: NULL model");
    return 1;
  }
  std::lock_guard<std::mutex> lock(model->mu);
  model->profile = profile_bits(on);
  return 0;
}

// ---- signature and static facts: the model argument is unused, the tables are static ----

namespace {
const ModelDesc& desc() { return npas::model_desc(); }
bool in_range(int i, int n) { return i >= 0 && i < n; }
}  // namespace

NPAS_EXPORT int npas_model_num_inputs(const npas_model*) { return desc().num_inputs; }
NPAS_EXPORT int npas_model_num_outputs(const npas_model*) { return desc().num_outputs; }
NPAS_EXPORT const char* npas_model_input_name(const npas_model*, int i) {
  return in_range(i, desc().num_inputs) ? desc().inputs[i].name : nullptr;
}
NPAS_EXPORT const char* npas_model_output_name(const npas_model*, int i) {
  return in_range(i, desc().num_outputs) ? desc().outputs[i].name : nullptr;
}
NPAS_EXPORT int npas_model_input_rank(const npas_model*, int i) {
  return in_range(i, desc().num_inputs) ? desc().inputs[i].rank : -1;
}
NPAS_EXPORT int npas_model_output_rank(const npas_model*, int i) {
  return in_range(i, desc().num_outputs) ? desc().outputs[i].rank : -1;
}
NPAS_EXPORT const std::int64_t* npas_model_input_shape(const npas_model*, int i) {
  return in_range(i, desc().num_inputs) ? desc().inputs[i].shape : nullptr;
}
NPAS_EXPORT const std::int64_t* npas_model_output_shape(const npas_model*, int i) {
  return in_range(i, desc().num_outputs) ? desc().outputs[i].shape : nullptr;
}

NPAS_EXPORT int npas_model_num_layers(const npas_model*) { return desc().num_layers; }
NPAS_EXPORT const char* npas_model_layer_name(const npas_model*, int i) {
  return in_range(i, desc().num_layers) ? desc().layers[i].name : nullptr;
}
NPAS_EXPORT const char* npas_model_layer_op(const npas_model*, int i) {
  return in_range(i, desc().num_layers) ? desc().layers[i].op : nullptr;
}
NPAS_EXPORT const char* npas_model_layer_kernel(const npas_model*, int i) {
  return in_range(i, desc().num_layers) ? desc().layers[i].kernel : nullptr;
}
NPAS_EXPORT const char* npas_model_layer_scheme(const npas_model*, int i) {
  return in_range(i, desc().num_layers) ? desc().layers[i].scheme : nullptr;
}
NPAS_EXPORT std::int64_t npas_model_layer_macs(const npas_model*, int i) {
  return in_range(i, desc().num_layers) ? desc().layers[i].macs : -1;
}
NPAS_EXPORT double npas_model_layer_ms(const npas_model* model, int i) {
  return model != nullptr && in_range(i, desc().num_layers) ? model->layer_ms[i] : -1.0;
}

NPAS_EXPORT std::int64_t npas_model_peak_activation_bytes(const npas_model*) {
  return desc().arena_bytes;
}
NPAS_EXPORT const char* npas_model_isa(const npas_model*) { return desc().isa; }
NPAS_EXPORT const char* npas_model_device_info(const npas_model* model) {
  return model != nullptr ? model->device_info.c_str() : "";
}
NPAS_EXPORT const char* npas_last_error(void) { return t_error; }
