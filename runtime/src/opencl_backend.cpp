// OpenCL host code of a compiled model: see opencl_backend.h.
//
// Memory: two device buffers for the whole model, allocated once: the activation arena (the
// compile-time memory plan, offsets as on the CPU targets) and the weights image (weights.bin as
// is, so every Ref keeps its offset). Kernels take (buffer, element offset) pairs, bound once at
// create time; a run is writes of the inputs, one clEnqueueNDRangeKernel per layer, reads of the
// outputs. Under fp16 storage both buffers hold half and the conversions happen on the host.
#include "opencl_backend.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "npas_cl.h"

namespace npas {

using namespace cl;  // NOLINT: the OpenCL names are the vocabulary of this file

namespace {

// ---- loading OpenCL ----

struct ClApi {
#define NPAS_CL_FIELD(name, ret, params) ret(*name) params = nullptr;
  NPAS_CL_FUNCTIONS(NPAS_CL_FIELD)
#undef NPAS_CL_FIELD
  void* handle = nullptr;
};

// Where OpenCL lives: the ICD loader on Linux, the vendors' libraries on Android (a phone has no
// loader; Qualcomm ships libOpenCL.so, ARM Mali exposes OpenCL from its GLES driver).
const char* const kLibraryPaths[] = {
    "libOpenCL.so.1",
    "libOpenCL.so",
    "/system/vendor/lib64/libOpenCL.so",
    "/vendor/lib64/libOpenCL.so",
    "/system/lib64/libOpenCL.so",
    "/system/vendor/lib64/egl/libGLES_mali.so",
    "/vendor/lib64/egl/libGLES_mali.so",
    "/system/lib64/egl/libGLES_mali.so",
    "/vendor/lib64/libPVROCL.so",
};

bool load_api(ClApi* api, std::string* error) {
  std::string tried;
  const char* forced = std::getenv("NPAS_OPENCL_LIBRARY");
  std::vector<const char*> paths;
  if (forced != nullptr && *forced != '\0') {
    paths.push_back(forced);
  } else {
    for (const char* p : kLibraryPaths) paths.push_back(p);
  }
  for (const char* path : paths) {
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      tried += tried.empty() ? "" : ", ";
      tried += path;
      continue;
    }
    bool ok = true;
    std::string missing;
#define NPAS_CL_BIND(name, ret, params)                                          \
  api->name = reinterpret_cast<ret(*) params>(dlsym(h, #name));                  \
  if (api->name == nullptr) {                                                    \
    ok = false;                                                                  \
    missing = #name;                                                             \
  }
    NPAS_CL_FUNCTIONS(NPAS_CL_BIND)
#undef NPAS_CL_BIND
    if (!ok) {
      dlclose(h);
      tried += tried.empty() ? "" : ", ";
      tried += std::string(path) + " (lacks " + missing + ")";
      continue;
    }
    api->handle = h;
    return true;
  }
  *error =
      "no OpenCL library found (tried " + tried +
      "); install an OpenCL driver: on Debian/Ubuntu `apt-get install ocl-icd-libopencl1 "
      "pocl-opencl-icd` (CPU) or your GPU vendor's ICD; on a phone the vendor's libOpenCL.so "
      "must exist; NPAS_OPENCL_LIBRARY names a library explicitly";
  return false;
}

const char* cl_error_name(cl_int code) {
  switch (code) {
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_PLATFORM_NOT_FOUND_KHR: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "OpenCL error";
  }
}

std::string fail(const char* what, cl_int code) {
  std::string msg = std::string(what) + " failed: " + cl_error_name(code) + " (" +
                    std::to_string(code) + ")";
  if (code == CL_MEM_OBJECT_ALLOCATION_FAILURE || code == CL_OUT_OF_RESOURCES ||
      code == CL_OUT_OF_HOST_MEMORY) {
    msg += "; the device ran out of memory: close other GPU work, use --fp16 storage or a "
           "smaller input shape";
  }
  return msg;
}

// ---- half precision on the host (IEEE binary16, round to nearest even) ----

std::uint16_t to_half(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or nan (nan keeps a mantissa bit)
    return static_cast<std::uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    if (abs < 0x33000000u) return static_cast<std::uint16_t>(sign);  // below half the min
    const std::uint32_t e = abs >> 23;
    const std::uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - e;  // f / 2^-24 == m >> shift (14 <= shift <= 24)
    std::uint32_t v = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1);
    const std::uint32_t half_unit = 1u << (shift - 1);
    if (rem > half_unit || (rem == half_unit && (v & 1u))) ++v;
    return static_cast<std::uint16_t>(sign | v);
  }
  std::uint32_t v = ((abs - 0x38000000u) >> 13);  // rebias exponent 127 -> 15
  const std::uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (v & 1u))) ++v;
  return static_cast<std::uint16_t>(sign | v);
}

float from_half(std::uint16_t h) {
  const std::uint32_t sign = (h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1fu;
  std::uint32_t m = h & 0x3ffu;
  std::uint32_t x;
  if (e == 0x1f) {
    x = sign | 0x7f800000u | (m << 13);
  } else if (e != 0) {
    x = sign | ((e + 112) << 23) | (m << 13);
  } else if (m == 0) {
    x = sign;
  } else {  // subnormal half: normalise
    int shift = 0;
    while ((m & 0x400u) == 0) {
      m <<= 1;
      ++shift;
    }
    x = sign | ((113 - shift) << 23) | ((m & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// ---- the program-binary cache ----

std::uint64_t fnv1a(std::uint64_t h, const std::string& s) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return (h ^ 0xff) * 1099511628211ull;
}

std::string cache_dir(const char* weights_path) {
  const char* env = std::getenv("NPAS_OPENCL_CACHE_DIR");
  if (env != nullptr && *env != '\0') return env;
  std::string dir = weights_path != nullptr ? weights_path : "";
  const std::size_t slash = dir.find_last_of('/');
  dir = slash == std::string::npos ? std::string(".") : dir.substr(0, slash);
  return dir + "/opencl-cache";
}

bool read_file(const std::string& path, std::vector<unsigned char>* out) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  out->clear();
  unsigned char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->insert(out->end(), buf, buf + n);
  std::fclose(f);
  return !out->empty();
}

// Written to a temporary name and renamed: a reader never sees half a binary.
bool write_file_atomic(const std::string& dir, const std::string& path,
                       const std::vector<unsigned char>& data) {
  ::mkdir(dir.c_str(), 0755);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

std::string device_string(const ClApi& api, cl_device_id dev, cl_uint what) {
  char buf[512] = {0};
  api.clGetDeviceInfo(dev, what, sizeof buf - 1, buf, nullptr);
  return buf;
}

std::string platform_string(const ClApi& api, cl_platform_id p, cl_uint what) {
  char buf[512] = {0};
  api.clGetPlatformInfo(p, what, sizeof buf - 1, buf, nullptr);
  return buf;
}

}  // namespace

struct ClBackend::State {
  const ModelDesc* d = nullptr;
  ClApi api;
  cl_platform_id platform = nullptr;
  cl_device_id device = nullptr;
  cl_context context = nullptr;
  cl_command_queue queue = nullptr;
  cl_mem arena = nullptr;
  cl_mem weights = nullptr;
  cl_program program = nullptr;
  std::vector<cl_kernel> kernels;     // one per layer (nullptr for views)
  std::vector<bool> driver_local;     // the layer's local size is left to the driver
  const unsigned char* host_weights = nullptr;  // for outputs that are folded constants
  std::size_t esize = 4;              // bytes per stored element
  std::vector<std::uint16_t> staging;  // fp16 conversions
  std::vector<cl_event> events;
  std::string info;

  ~State() {
    for (cl_kernel k : kernels) {
      if (k != nullptr) api.clReleaseKernel(k);
    }
    if (program != nullptr) api.clReleaseProgram(program);
    if (arena != nullptr) api.clReleaseMemObject(arena);
    if (weights != nullptr) api.clReleaseMemObject(weights);
    if (queue != nullptr) api.clReleaseCommandQueue(queue);
    if (context != nullptr) api.clReleaseContext(context);
    // The library stays loaded: drivers keep threads and atexit handlers that must not lose
    // their code, so dlclose would be unsafe.
  }

  bool pick_device(std::string* error);
  bool upload(cl_mem mem, std::size_t elem_offset, const float* src, std::size_t count,
              std::string* error);
  bool download(cl_mem mem, std::size_t elem_offset, float* dst, std::size_t count,
                std::string* error);
  bool build_program(const char* weights_path, std::string* error);
};

// NPAS_OPENCL_DEVICE: "P:D" (platform and device index) or a substring of the device or
// platform name; default the first GPU of any platform, else the first device.
bool ClBackend::State::pick_device(std::string* error) {
  cl_uint np = 0;
  cl_int rc = api.clGetPlatformIDs(0, nullptr, &np);
  if (rc != CL_SUCCESS || np == 0) {
    *error = "OpenCL found no platform (clGetPlatformIDs: " + std::string(cl_error_name(rc)) +
             "): the loader is installed but no driver is registered; install one, e.g. "
             "`apt-get install pocl-opencl-icd`, or check /etc/OpenCL/vendors";
    return false;
  }
  std::vector<cl_platform_id> platforms(np);
  api.clGetPlatformIDs(np, platforms.data(), nullptr);
  const char* want = std::getenv("NPAS_OPENCL_DEVICE");
  const std::string sel = want != nullptr ? want : "";
  std::string seen;
  cl_platform_id first_p = nullptr, gpu_p = nullptr;
  cl_device_id first_d = nullptr, gpu_d = nullptr;
  for (cl_uint p = 0; p < np; ++p) {
    cl_uint nd = 0;
    if (api.clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) != CL_SUCCESS) {
      continue;
    }
    std::vector<cl_device_id> devs(nd);
    api.clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, nd, devs.data(), nullptr);
    const std::string pname = platform_string(api, platforms[p], CL_PLATFORM_NAME);
    for (cl_uint i = 0; i < nd; ++i) {
      const std::string dname = device_string(api, devs[i], CL_DEVICE_NAME);
      const std::string index = std::to_string(p) + ":" + std::to_string(i);
      seen += (seen.empty() ? "" : ", ") + index + " " + pname + " / " + dname;
      if (!sel.empty()) {
        if (sel == index || dname.find(sel) != std::string::npos ||
            pname.find(sel) != std::string::npos) {
          platform = platforms[p];
          device = devs[i];
          return true;
        }
        continue;
      }
      cl_bitfield type = 0;
      api.clGetDeviceInfo(devs[i], CL_DEVICE_TYPE, sizeof type, &type, nullptr);
      if (first_d == nullptr) first_p = platforms[p], first_d = devs[i];
      if ((type & CL_DEVICE_TYPE_GPU) != 0 && gpu_d == nullptr) gpu_p = platforms[p], gpu_d = devs[i];
    }
  }
  if (!sel.empty()) {
    *error = "NPAS_OPENCL_DEVICE='" + sel + "' matches no OpenCL device; devices here: " +
             (seen.empty() ? std::string("none") : seen);
    return false;
  }
  if (first_d == nullptr) {
    *error = "OpenCL platforms exist but none has a device; check the driver installation "
             "(clinfo lists what OpenCL sees)";
    return false;
  }
  platform = gpu_d != nullptr ? gpu_p : first_p;
  device = gpu_d != nullptr ? gpu_d : first_d;
  return true;
}

bool ClBackend::State::upload(cl_mem mem, std::size_t elem_offset, const float* src,
                              std::size_t count, std::string* error) {
  const void* data = src;
  if (esize == 2) {
    staging.resize(count);
    for (std::size_t i = 0; i < count; ++i) staging[i] = to_half(src[i]);
    data = staging.data();
  }
  const cl_int rc = api.clEnqueueWriteBuffer(queue, mem, CL_TRUE, elem_offset * esize,
                                             count * esize, data, 0, nullptr, nullptr);
  if (rc != CL_SUCCESS) {
    *error = fail("clEnqueueWriteBuffer", rc);
    return false;
  }
  return true;
}

bool ClBackend::State::download(cl_mem mem, std::size_t elem_offset, float* dst,
                                std::size_t count, std::string* error) {
  void* data = dst;
  if (esize == 2) {
    staging.resize(count);
    data = staging.data();
  }
  const cl_int rc = api.clEnqueueReadBuffer(queue, mem, CL_TRUE, elem_offset * esize,
                                            count * esize, data, 0, nullptr, nullptr);
  if (rc != CL_SUCCESS) {
    *error = fail("clEnqueueReadBuffer", rc);
    return false;
  }
  if (esize == 2) {
    for (std::size_t i = 0; i < count; ++i) dst[i] = from_half(staging[i]);
  }
  return true;
}

bool ClBackend::State::build_program(const char* weights_path, std::string* error) {
  const ClDesc& c = *d->opencl;
  const std::string options =
      std::string("-cl-std=CL1.2") + (c.fp16_storage ? " -DNPAS_FP16_STORAGE" : "");
  // The binary depends on the source, the options and exactly which driver compiled it.
  std::uint64_t h = 1469598103934665603ull;
  for (const std::string& part :
       {std::string(c.program_hash), options, platform_string(api, platform, CL_PLATFORM_NAME),
        platform_string(api, platform, CL_PLATFORM_VERSION),
        device_string(api, device, CL_DEVICE_NAME), device_string(api, device, CL_DEVICE_VERSION),
        device_string(api, device, CL_DRIVER_VERSION)}) {
    h = fnv1a(h, part);
  }
  char key[17];
  std::snprintf(key, sizeof key, "%016llx", static_cast<unsigned long long>(h));
  const std::string dir = cache_dir(weights_path);
  const std::string path = dir + "/" + key + ".clbin";

  const auto t0 = std::chrono::steady_clock::now();
  std::string how = "built";
  std::vector<unsigned char> binary;
  if (read_file(path, &binary)) {
    const std::size_t size = binary.size();
    const unsigned char* ptr = binary.data();
    cl_int status = CL_SUCCESS, rc = CL_SUCCESS;
    cl_program p = api.clCreateProgramWithBinary(context, 1, &device, &size, &ptr, &status, &rc);
    if (p != nullptr && rc == CL_SUCCESS && status == CL_SUCCESS &&
        api.clBuildProgram(p, 1, &device, options.c_str(), nullptr, nullptr) == CL_SUCCESS) {
      program = p;
      how = "cached";
    } else if (p != nullptr) {
      api.clReleaseProgram(p);  // stale or foreign binary: rebuild from source below
    }
  }
  if (program == nullptr) {
    cl_int rc = CL_SUCCESS;
    std::vector<std::size_t> lengths(c.num_sources);
    for (int i = 0; i < c.num_sources; ++i) lengths[i] = std::strlen(c.sources[i]);
    program = api.clCreateProgramWithSource(context, static_cast<cl_uint>(c.num_sources),
                                            const_cast<const char**>(c.sources), lengths.data(),
                                            &rc);
    if (program == nullptr || rc != CL_SUCCESS) {
      *error = fail("clCreateProgramWithSource", rc);
      return false;
    }
    rc = api.clBuildProgram(program, 1, &device, options.c_str(), nullptr, nullptr);
    if (rc != CL_SUCCESS) {
      std::size_t n = 0;
      api.clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
      std::string log(n, '\0');
      if (n > 0) api.clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, n, &log[0], nullptr);
      while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
      *error = fail("building the OpenCL kernels (clBuildProgram)", rc) + " on " +
               device_string(api, device, CL_DEVICE_NAME) + "; build log:\n" + log;
      return false;
    }
    std::size_t size = 0;
    if (api.clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, nullptr) ==
            CL_SUCCESS &&
        size > 0) {
      binary.assign(size, 0);
      unsigned char* ptr = binary.data();
      if (api.clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof ptr, &ptr, nullptr) ==
          CL_SUCCESS) {
        if (!write_file_atomic(dir, path, binary)) how = "built (cache not writable: " + dir + ")";
      }
    }
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", ms);
  info += "; program=" + how + "; build_ms=" + buf + "; cache=" + path;
  return true;
}

ClBackend::ClBackend(std::unique_ptr<State> s) : s_(std::move(s)) {}
ClBackend::~ClBackend() = default;

const std::string& ClBackend::info() const { return s_->info; }

std::unique_ptr<ClBackend> ClBackend::create(const ModelDesc& d, const unsigned char* weights,
                                             const char* weights_path, std::string* error) {
  std::unique_ptr<State> s(new State);
  s->d = &d;
  s->host_weights = weights;
  const ClDesc& c = *d.opencl;
  s->esize = c.fp16_storage ? 2 : 4;
  if (!load_api(&s->api, error) || !s->pick_device(error)) return nullptr;
  ClApi& api = s->api;
  const std::string dname = device_string(api, s->device, CL_DEVICE_NAME);
  s->info = "platform=" + platform_string(api, s->platform, CL_PLATFORM_NAME) +
            "; device=" + dname + "; storage=" + (c.fp16_storage ? "fp16" : "fp32");

  cl_int rc = CL_SUCCESS;
  s->context = api.clCreateContext(nullptr, 1, &s->device, nullptr, nullptr, &rc);
  if (s->context == nullptr || rc != CL_SUCCESS) {
    *error = fail("clCreateContext", rc) + " on " + dname;
    return nullptr;
  }
  s->queue = api.clCreateCommandQueue(s->context, s->device, CL_QUEUE_PROFILING_ENABLE, &rc);
  if (s->queue == nullptr || rc != CL_SUCCESS) {
    *error = fail("clCreateCommandQueue", rc) + " on " + dname;
    return nullptr;
  }

  // Device memory: say which buffer does not fit before the driver fails obscurely.
  cl_ulong max_alloc = 0, global = 0;
  api.clGetDeviceInfo(s->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc,
                      nullptr);
  api.clGetDeviceInfo(s->device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof global, &global, nullptr);
  const std::size_t arena_bytes = static_cast<std::size_t>(d.arena_bytes / 4) * s->esize + 64;
  const std::size_t weights_elems = d.weights_bytes / 4;
  const std::size_t weights_bytes = weights_elems * s->esize;
  for (const auto& [what, bytes] : {std::pair<const char*, std::size_t>{"activation arena", arena_bytes},
                                    {"weights", weights_bytes}}) {
    if (max_alloc != 0 && bytes > max_alloc) {
      *error = std::string("out of device memory: the model's ") + what + " needs " +
               std::to_string(bytes >> 20) + " MiB in one buffer, but " + dname +
               " allows at most " + std::to_string(max_alloc >> 20) +
               " MiB per buffer; compile with --fp16 (half storage) or a smaller input shape";
      return nullptr;
    }
  }
  if (global != 0 && arena_bytes + weights_bytes > global) {
    *error = "out of device memory: the model needs " +
             std::to_string((arena_bytes + weights_bytes) >> 20) + " MiB, " + dname + " has " +
             std::to_string(global >> 20) + " MiB; compile with --fp16 or a smaller input shape";
    return nullptr;
  }
  s->arena = api.clCreateBuffer(s->context, CL_MEM_READ_WRITE, arena_bytes, nullptr, &rc);
  if (s->arena == nullptr || rc != CL_SUCCESS) {
    *error = fail("allocating the activation arena (clCreateBuffer)", rc);
    return nullptr;
  }
  s->weights = api.clCreateBuffer(s->context, CL_MEM_READ_ONLY, weights_bytes, nullptr, &rc);
  if (s->weights == nullptr || rc != CL_SUCCESS) {
    *error = fail("allocating the weights buffer (clCreateBuffer)", rc);
    return nullptr;
  }
  if (!s->upload(s->weights, 0, reinterpret_cast<const float*>(weights), weights_elems, error)) {
    return nullptr;
  }
  s->staging.clear();
  s->staging.shrink_to_fit();

  if (!s->build_program(weights_path, error)) return nullptr;

  s->kernels.assign(d.num_layers, nullptr);
  s->driver_local.assign(d.num_layers, false);
  s->events.assign(d.num_layers, nullptr);
  std::size_t max_group = 0;
  api.clGetDeviceInfo(s->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_group, &max_group,
                      nullptr);
  for (int i = 0; i < d.num_layers; ++i) {
    const ClLayerDesc& cl = c.layers[i];
    if (cl.function == nullptr) continue;
    const LayerDesc& l = d.layers[i];
    cl_kernel k = api.clCreateKernel(s->program, cl.function, &rc);
    if (k == nullptr || rc != CL_SUCCESS) {
      *error = fail("clCreateKernel", rc) + " for layer '" + l.name + "' (" + cl.function + ")";
      return nullptr;
    }
    s->kernels[i] = k;
    const Ref* r = d.refs + l.ref_begin;
    const int n = l.n_in + l.n_out + l.n_w;
    for (int j = 0; j < n; ++j) {
      cl_mem mem = r[j].src == Src::kArena ? s->arena : s->weights;
      const int offset = static_cast<int>(r[j].offset / 4);
      rc = api.clSetKernelArg(k, 2 * j, sizeof(cl_mem), &mem);
      if (rc == CL_SUCCESS) rc = api.clSetKernelArg(k, 2 * j + 1, sizeof offset, &offset);
      if (rc != CL_SUCCESS) {
        *error = fail("clSetKernelArg", rc) + " for layer '" + l.name + "' argument " +
                 std::to_string(2 * j);
        return nullptr;
      }
    }
    // A work-group the kernel cannot run with on this device goes to the driver's choice.
    std::size_t want = 1, kernel_max = 0;
    for (int k2 = 0; k2 < cl.dims; ++k2) want *= cl.local[k2] == 0 ? 1 : cl.local[k2];
    api.clGetKernelWorkGroupInfo(k, s->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kernel_max,
                                 &kernel_max, nullptr);
    s->driver_local[i] = cl.local[0] == 0 || (max_group != 0 && want > max_group) ||
                         (kernel_max != 0 && want > kernel_max);
  }
  return std::unique_ptr<ClBackend>(new ClBackend(std::move(s)));
}

bool ClBackend::run(const float* const* inputs, float* const* outputs, bool profile,
                    double* layer_ms, std::string* error) {
  State& s = *s_;
  const ModelDesc& d = *s.d;
  ClApi& api = s.api;
  for (int i = 0; i < d.num_inputs; ++i) {
    const TensorDesc& t = d.inputs[i];
    if (!s.upload(s.arena, t.ref.offset / 4, inputs[i], t.bytes / 4, error)) return false;
  }
  for (int i = 0; i < d.num_layers; ++i) {
    if (s.kernels[i] == nullptr) continue;
    const ClLayerDesc& cl = d.opencl->layers[i];
    cl_event* ev = profile ? &s.events[i] : nullptr;
    const cl_int rc = api.clEnqueueNDRangeKernel(
        s.queue, s.kernels[i], static_cast<cl_uint>(cl.dims), nullptr, cl.global,
        s.driver_local[i] ? nullptr : cl.local, 0, nullptr, ev);
    if (rc != CL_SUCCESS) {
      *error = fail("clEnqueueNDRangeKernel", rc) + " for layer '" + d.layers[i].name + "' (" +
               cl.function + ")";
      api.clFinish(s.queue);
      return false;
    }
  }
  const cl_int rc = api.clFinish(s.queue);
  if (rc != CL_SUCCESS) {
    *error = fail("running the model's kernels (clFinish)", rc);
    return false;
  }
  if (profile) {
    for (int i = 0; i < d.num_layers; ++i) {
      layer_ms[i] = 0.0;
      if (s.events[i] == nullptr) continue;
      cl_ulong t0 = 0, t1 = 0;
      if (api.clGetEventProfilingInfo(s.events[i], CL_PROFILING_COMMAND_START, sizeof t0, &t0,
                                      nullptr) == CL_SUCCESS &&
          api.clGetEventProfilingInfo(s.events[i], CL_PROFILING_COMMAND_END, sizeof t1, &t1,
                                      nullptr) == CL_SUCCESS) {
        layer_ms[i] = static_cast<double>(t1 - t0) * 1e-6;
      }
      api.clReleaseEvent(s.events[i]);
      s.events[i] = nullptr;
    }
  }
  for (int i = 0; i < d.num_outputs; ++i) {
    const TensorDesc& t = d.outputs[i];
    if (t.ref.src == Src::kWeights) {  // a folded constant: straight from the host image
      std::memcpy(outputs[i], s.host_weights + t.ref.offset, t.bytes);
    } else if (!s.download(s.arena, t.ref.offset / 4, outputs[i], t.bytes / 4, error)) {
      return false;
    }
  }
  return true;
}

}  // namespace npas
