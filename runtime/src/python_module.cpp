// npas._runtime: loads one compiled model (libnpas_model.so + weights.bin) and wraps the C ABI
// of npas_model.h. The library is dlopen()ed RTLD_LOCAL so that every model keeps its own
// kernel symbols even when several models are loaded at once.
//
// Argument checking (names, shapes, dtypes) belongs to the Python CompiledModel, which has the
// model's metadata and can word the errors; this module only re-checks what protects memory:
// counts, element counts, dtype and contiguity.
#include <dlfcn.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "npas_model.h"

namespace py = pybind11;

namespace {

class NativeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Every function of the C ABI, as an X-macro so that the Api struct and resolve() cannot drift.
#define NPAS_API_FUNCTIONS(X)         \
  X(npas_model_create)                \
  X(npas_model_destroy)               \
  X(npas_model_run)                   \
  X(npas_model_set_threads)           \
  X(npas_model_num_inputs)            \
  X(npas_model_num_outputs)           \
  X(npas_model_input_name)            \
  X(npas_model_output_name)           \
  X(npas_model_input_rank)            \
  X(npas_model_output_rank)           \
  X(npas_model_input_shape)           \
  X(npas_model_output_shape)          \
  X(npas_model_num_layers)            \
  X(npas_model_layer_name)            \
  X(npas_model_layer_op)              \
  X(npas_model_layer_kernel)          \
  X(npas_model_layer_scheme)          \
  X(npas_model_layer_macs)            \
  X(npas_model_layer_ms)              \
  X(npas_model_set_profiling)         \
  X(npas_model_peak_activation_bytes) \
  X(npas_model_isa)                   \
  X(npas_model_device_info)           \
  X(npas_last_error)

// The C ABI, resolved from one library.
struct Api {
#define NPAS_API_FIELD(name) decltype(&::name) name = nullptr;
  NPAS_API_FUNCTIONS(NPAS_API_FIELD)
#undef NPAS_API_FIELD
};

std::string str_or_empty(const char* s) { return s != nullptr ? std::string(s) : std::string(); }

struct Tensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::size_t elements() const {
    std::size_t n = 1;
    for (std::int64_t d : shape) n *= static_cast<std::size_t>(d);
    return n;
  }
};

class Model {
 public:
  Model(const std::string& library, const std::string& weights, int threads, bool profile) {
    handle_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
      throw NativeError("cannot load model library '" + library + "': " + str_or_empty(dlerror()));
    }
    try {
      resolve(library);
      npas_options options{threads, profile ? 1 : 0};
      model_ = api_.npas_model_create(weights.c_str(), &options);
      if (model_ == nullptr) throw NativeError(str_or_empty(api_.npas_last_error()));
      threads_ = threads <= 0 ? 1 : threads;
      profile_ = profile;
    } catch (...) {
      dlclose(handle_);
      handle_ = nullptr;
      throw;
    }
    for (int i = 0; i < api_.npas_model_num_inputs(model_); ++i) {
      inputs_.push_back(tensor(api_.npas_model_input_name(model_, i),
                               api_.npas_model_input_rank(model_, i),
                               api_.npas_model_input_shape(model_, i)));
    }
    for (int i = 0; i < api_.npas_model_num_outputs(model_); ++i) {
      outputs_.push_back(tensor(api_.npas_model_output_name(model_, i),
                                api_.npas_model_output_rank(model_, i),
                                api_.npas_model_output_shape(model_, i)));
    }
  }

  ~Model() {
    if (model_ != nullptr) api_.npas_model_destroy(model_);
    if (handle_ != nullptr) dlclose(handle_);
  }

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  py::list run(const py::list& arrays) {
    std::vector<const float*> in = input_pointers(arrays);
    py::list result;
    std::vector<float*> out;
    for (const Tensor& t : outputs_) {
      py::array_t<float> a(t.shape);
      out.push_back(a.mutable_data());
      result.append(a);
    }
    int rc;
    {
      py::gil_scoped_release release;
      rc = api_.npas_model_run(model_, in.data(), out.data());
    }
    if (rc != 0) throw NativeError(str_or_empty(api_.npas_last_error()));
    return result;
  }

  // Times `repeat` runs after `warmup` untimed ones, in C++ with the GIL released. Returns
  // (run times in ms, per-layer times in ms as [layer][run] when profiling is on, else []).
  std::pair<std::vector<double>, std::vector<std::vector<double>>> benchmark(const py::list& arrays,
                                                                             int repeat,
                                                                             int warmup) {
    if (repeat < 1 || warmup < 0) throw std::invalid_argument("repeat >= 1 and warmup >= 0");
    std::vector<const float*> in = input_pointers(arrays);
    std::vector<std::vector<float>> out_data;
    std::vector<float*> out;
    for (const Tensor& t : outputs_) {
      out_data.emplace_back(t.elements());
      out.push_back(out_data.back().data());
    }
    const int layers = api_.npas_model_num_layers(model_);
    std::vector<double> runs;
    std::vector<std::vector<double>> per_layer(profile_ ? layers : 0);
    int rc = 0;
    {
      py::gil_scoped_release release;
      for (int r = 0; r < warmup + repeat && rc == 0; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        rc = api_.npas_model_run(model_, in.data(), out.data());
        const auto t1 = std::chrono::steady_clock::now();
        if (r < warmup) continue;
        runs.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        for (std::size_t l = 0; l < per_layer.size(); ++l) {
          per_layer[l].push_back(api_.npas_model_layer_ms(model_, static_cast<int>(l)));
        }
      }
    }
    if (rc != 0) throw NativeError(str_or_empty(api_.npas_last_error()));
    return {runs, per_layer};
  }

  void set_threads(int threads) {
    if (api_.npas_model_set_threads(model_, threads) != 0) {
      throw NativeError(str_or_empty(api_.npas_last_error()));
    }
    threads_ = threads <= 0 ? 1 : threads;
  }

  void set_profiling(bool on) {
    if (api_.npas_model_set_profiling(model_, on ? 1 : 0) != 0) {
      throw NativeError(str_or_empty(api_.npas_last_error()));
    }
    profile_ = on;
  }

  py::list layers() const {
    py::list out;
    for (int i = 0; i < api_.npas_model_num_layers(model_); ++i) {
      py::dict d;
      d["name"] = str_or_empty(api_.npas_model_layer_name(model_, i));
      d["op"] = str_or_empty(api_.npas_model_layer_op(model_, i));
      d["kernel"] = str_or_empty(api_.npas_model_layer_kernel(model_, i));
      d["scheme"] = str_or_empty(api_.npas_model_layer_scheme(model_, i));
      d["macs"] = api_.npas_model_layer_macs(model_, i);
      out.append(d);
    }
    return out;
  }

  std::vector<double> layer_ms() const {
    std::vector<double> ms;
    for (int i = 0; i < api_.npas_model_num_layers(model_); ++i) {
      ms.push_back(api_.npas_model_layer_ms(model_, i));
    }
    return ms;
  }

  std::vector<std::pair<std::string, std::vector<std::int64_t>>> signature(bool inputs) const {
    std::vector<std::pair<std::string, std::vector<std::int64_t>>> out;
    for (const Tensor& t : inputs ? inputs_ : outputs_) out.emplace_back(t.name, t.shape);
    return out;
  }

  std::int64_t peak_activation_bytes() const {
    return api_.npas_model_peak_activation_bytes(model_);
  }
  std::string isa() const { return str_or_empty(api_.npas_model_isa(model_)); }
  std::string device_info() const { return str_or_empty(api_.npas_model_device_info(model_)); }
  int threads() const { return threads_; }
  bool profiling() const { return profile_; }

 private:
  void resolve(const std::string& library) {
#define NPAS_API_RESOLVE(name)                                                                 \
  api_.name = reinterpret_cast<decltype(api_.name)>(dlsym(handle_, #name));                    \
  if (api_.name == nullptr) {                                                                  \
    throw NativeError("'" + library + "' is not an npas model library (no symbol " #name ")"); \
  }
    NPAS_API_FUNCTIONS(NPAS_API_RESOLVE)
#undef NPAS_API_RESOLVE
  }

  static Tensor tensor(const char* name, int rank, const std::int64_t* shape) {
    Tensor t{str_or_empty(name), {}};
    for (int d = 0; d < rank; ++d) t.shape.push_back(shape[d]);
    return t;
  }

  // Pointers into the caller's arrays, which the py::list keeps alive during the call.
  std::vector<const float*> input_pointers(const py::list& arrays) const {
    if (arrays.size() != inputs_.size()) {
      throw std::invalid_argument("expected " + std::to_string(inputs_.size()) +
                                  " input arrays, got " + std::to_string(arrays.size()));
    }
    std::vector<const float*> ptrs;
    for (std::size_t i = 0; i < inputs_.size(); ++i) {
      py::object obj = arrays[i];
      if (!py::isinstance<py::array>(obj)) {
        throw std::invalid_argument("input '" + inputs_[i].name + "' must be a numpy array");
      }
      auto a = obj.cast<py::array>();
      if (!a.dtype().is(py::dtype::of<float>()) || !(a.flags() & py::array::c_style) ||
          static_cast<std::size_t>(a.size()) != inputs_[i].elements()) {
        throw std::invalid_argument("input '" + inputs_[i].name +
                                    "' must be a C-contiguous float32 array of " +
                                    std::to_string(inputs_[i].elements()) + " elements");
      }
      ptrs.push_back(static_cast<const float*>(a.data()));
    }
    return ptrs;
  }

  void* handle_ = nullptr;
  npas_model* model_ = nullptr;
  Api api_;
  std::vector<Tensor> inputs_, outputs_;
  int threads_ = 1;
  bool profile_ = false;
};

}  // namespace

PYBIND11_MODULE(_runtime, m) {
  m.doc() = "npas native runtime: wraps the C ABI of a compiled model (npas_model.h)";
  py::register_exception<NativeError>(m, "NativeError", PyExc_RuntimeError);

  py::class_<Model>(m, "Model")
      .def(py::init<const std::string&, const std::string&, int, bool>(), py::arg("library"),
           py::arg("weights"), py::arg("threads") = 1, py::arg("profile") = false)
      .def("run", &Model::run, py::arg("inputs"),
           "Run once on a list of C-contiguous float32 arrays; returns the output arrays.")
      .def("benchmark", &Model::benchmark, py::arg("inputs"), py::arg("repeat"), py::arg("warmup"),
           "Time runs in C++: (ms per run, per-layer ms [layer][run]).")
      .def("set_threads", &Model::set_threads, py::arg("threads"))
      .def("set_profiling", &Model::set_profiling, py::arg("on"))
      .def("layers", &Model::layers)
      .def("layer_ms", &Model::layer_ms)
      .def_property_readonly("inputs", [](const Model& m) { return m.signature(true); })
      .def_property_readonly("outputs", [](const Model& m) { return m.signature(false); })
      .def_property_readonly("peak_activation_bytes", &Model::peak_activation_bytes)
      .def_property_readonly("isa", &Model::isa)
      .def_property_readonly("device_info", &Model::device_info)
      .def_property_readonly("threads", &Model::threads)
      .def_property_readonly("profiling", &Model::profiling);

  m.def(
      "create",
      [](const std::string& library, const std::string& weights, int threads, bool profile) {
        return std::make_unique<Model>(library, weights, threads, profile);
      },
      py::arg("library"), py::arg("weights"), py::arg("threads") = 1, py::arg("profile") = false,
      "Load a compiled model: create(libnpas_model.so, weights.bin, threads, profile).");
}
