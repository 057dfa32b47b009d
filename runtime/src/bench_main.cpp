// npas_bench: an executable that runs and times a compiled model on the device it runs on,
// through the C ABI only (the same path an app takes). Remote devices (qemu, ssh, adb) run
// models through it. Linked statically, except for OpenCL builds (they dlopen OpenCL).
//
//   npas_bench weights.bin [--repeat N] [--warmup N] [--threads N] [--json]
//              [--inputs DIR] [--outputs DIR] [--markers]
//
// Inputs are random (a fixed seed) unless --inputs DIR holds input_<i>.bin for every model
// input i: raw little-endian float32, exactly the input's size. --outputs DIR writes each
// output of the last run as output_<i>.bin in the same format. --markers executes the
// NPAS_PROFILE_MARKERS no-ops around runs and layers, for instruction-counting emulation.
// With --json it prints one JSON object:
//   {"median_ms", "p10_ms", "p90_ms", "runs": [...], "threads", "isa", "device_info",
//    "layers": [{"name", "op", "kernel", "scheme", "macs", "median_ms"}]}
// Arguments are parsed with plain C functions before npas_model_create so that nothing
// compiled with the kernels' ISA flags can run before the model's CPU check.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "npas_model.h"

namespace {

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s weights.bin [--repeat N] [--warmup N] [--threads N] [--json]\n"
               "       [--inputs DIR] [--outputs DIR] [--markers]\n",
               argv0);
  return 2;
}

std::string tensor_file(const char* dir, const char* kind, int index) {
  return std::string(dir) + "/" + kind + "_" + std::to_string(index) + ".bin";
}

// Reads exactly data->size() floats; anything else is an error that names the file.
bool read_tensor(const std::string& path, std::vector<float>* data) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    std::fprintf(stderr, "npas_bench: cannot open input '%s': %s\n", path.c_str(),
                 std::strerror(errno));
    return false;
  }
  const std::size_t got = std::fread(data->data(), sizeof(float), data->size(), f);
  const bool exact = got == data->size() && std::fgetc(f) == EOF;
  std::fclose(f);
  if (!exact) {
    std::fprintf(stderr, "npas_bench: input '%s' must hold exactly %zu float32 values\n",
                 path.c_str(), data->size());
  }
  return exact;
}

bool write_tensor(const std::string& path, const std::vector<float>& data) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  bool ok = f != nullptr &&
            std::fwrite(data.data(), sizeof(float), data.size(), f) == data.size();
  if (f != nullptr) ok = std::fclose(f) == 0 && ok;
  ok = ok && std::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) {
    std::fprintf(stderr, "npas_bench: cannot write output '%s': %s\n", path.c_str(),
                 std::strerror(errno));
    std::remove(tmp.c_str());
  }
  return ok;
}

// Linear interpolation between closest ranks, as numpy.percentile does by default, so the
// Python runtime and this executable report the same statistics.
double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

void json_string(const char* s) {
  std::putchar('"');
  for (const unsigned char* p = reinterpret_cast<const unsigned char*>(s); *p; ++p) {
    if (*p == '"' || *p == '\\') {
      std::printf("\\%c", *p);
    } else if (*p < 0x20) {
      std::printf("\\u%04x", *p);
    } else {
      std::putchar(*p);
    }
  }
  std::putchar('"');
}

std::uint64_t g_rng = 0x9E3779B97F4A7C15ull;
float next_uniform() {  // xorshift64*: reproducible inputs without <random>
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  const std::uint64_t r = g_rng * 0x2545F4914F6CDD1Dull;
  return static_cast<float>(r >> 40) / static_cast<float>(1ull << 24) * 2.0f - 1.0f;
}

std::size_t elements(const std::int64_t* shape, int rank) {
  std::size_t n = 1;
  for (int d = 0; d < rank; ++d) n *= static_cast<std::size_t>(shape[d]);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  const char* weights = nullptr;
  const char* inputs_dir = nullptr;
  const char* outputs_dir = nullptr;
  long repeat = 50, warmup = 5, threads = 1;
  bool json = false, markers = false;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char** dir = nullptr;
    if (std::strcmp(a, "--inputs") == 0) dir = &inputs_dir;
    if (std::strcmp(a, "--outputs") == 0) dir = &outputs_dir;
    if (dir != nullptr) {
      if (i + 1 >= argc) return usage(argv[0]);
      *dir = argv[++i];
      continue;
    }
    if (std::strcmp(a, "--markers") == 0) {
      markers = true;
      continue;
    }
    long* target = nullptr;
    if (std::strcmp(a, "--repeat") == 0) target = &repeat;
    if (std::strcmp(a, "--warmup") == 0) target = &warmup;
    if (std::strcmp(a, "--threads") == 0) target = &threads;
    if (target != nullptr) {
      if (i + 1 >= argc) return usage(argv[0]);
      char* end = nullptr;
      *target = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || *target < 0) return usage(argv[0]);
    } else if (std::strcmp(a, "--json") == 0) {
      json = true;
    } else if (a[0] == '-' || weights != nullptr) {
      return usage(argv[0]);
    } else {
      weights = a;
    }
  }
  if (weights == nullptr || repeat < 1) return usage(argv[0]);

  npas_options options{static_cast<int>(threads),
                       NPAS_PROFILE_TIMES | (markers ? NPAS_PROFILE_MARKERS : 0)};
  npas_model* model = npas_model_create(weights, &options);
  if (model == nullptr) {
    std::fprintf(stderr, "npas_bench: %s\n", npas_last_error());
    return 1;
  }

  std::vector<std::vector<float>> in_data(npas_model_num_inputs(model));
  std::vector<std::vector<float>> out_data(npas_model_num_outputs(model));
  std::vector<const float*> in_ptrs;
  std::vector<float*> out_ptrs;
  for (std::size_t i = 0; i < in_data.size(); ++i) {
    const int k = static_cast<int>(i);
    in_data[i].resize(elements(npas_model_input_shape(model, k), npas_model_input_rank(model, k)));
    if (inputs_dir != nullptr) {
      if (!read_tensor(tensor_file(inputs_dir, "input", k), &in_data[i])) {
        npas_model_destroy(model);
        return 1;
      }
    } else {
      for (float& x : in_data[i]) x = next_uniform();
    }
    in_ptrs.push_back(in_data[i].data());
  }
  for (std::size_t i = 0; i < out_data.size(); ++i) {
    const int k = static_cast<int>(i);
    out_data[i].resize(
        elements(npas_model_output_shape(model, k), npas_model_output_rank(model, k)));
    out_ptrs.push_back(out_data[i].data());
  }

  const int n_layers = npas_model_num_layers(model);
  std::vector<double> runs;
  std::vector<std::vector<double>> layer_runs(n_layers);
  for (long r = 0; r < warmup + repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = npas_model_run(model, in_ptrs.data(), out_ptrs.data());
    const auto t1 = std::chrono::steady_clock::now();
    if (rc != 0) {
      std::fprintf(stderr, "npas_bench: %s\n", npas_last_error());
      npas_model_destroy(model);
      return 1;
    }
    if (r < warmup) continue;
    runs.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    for (int l = 0; l < n_layers; ++l) layer_runs[l].push_back(npas_model_layer_ms(model, l));
  }

  for (std::size_t i = 0; outputs_dir != nullptr && i < out_data.size(); ++i) {
    if (!write_tensor(tensor_file(outputs_dir, "output", static_cast<int>(i)), out_data[i])) {
      npas_model_destroy(model);
      return 1;
    }
  }

  if (json) {
    std::printf("{\"median_ms\": %.6f, \"p10_ms\": %.6f, \"p90_ms\": %.6f, \"threads\": %ld, ",
                percentile(runs, 50), percentile(runs, 10), percentile(runs, 90), threads);
    std::printf("\"isa\": ");
    json_string(npas_model_isa(model));
    std::printf(", \"device_info\": ");
    json_string(npas_model_device_info(model));
    std::printf(", \"runs\": [");
    for (std::size_t i = 0; i < runs.size(); ++i) std::printf("%s%.6f", i ? ", " : "", runs[i]);
    std::printf("], \"layers\": [");
    for (int l = 0; l < n_layers; ++l) {
      std::printf("%s{\"name\": ", l ? ", " : "");
      json_string(npas_model_layer_name(model, l));
      std::printf(", \"op\": ");
      json_string(npas_model_layer_op(model, l));
      std::printf(", \"kernel\": ");
      json_string(npas_model_layer_kernel(model, l));
      std::printf(", \"scheme\": ");
      json_string(npas_model_layer_scheme(model, l));
      std::printf(", \"macs\": %lld, \"median_ms\": %.6f}",
                  static_cast<long long>(npas_model_layer_macs(model, l)),
                  percentile(layer_runs[l], 50));
    }
    std::printf("]}\n");
  } else {
    std::printf("median %.3f ms  p10 %.3f ms  p90 %.3f ms  (%zu runs, %ld threads, %s)\n",
                percentile(runs, 50), percentile(runs, 10), percentile(runs, 90), runs.size(),
                threads, npas_model_isa(model));
    for (int l = 0; l < n_layers; ++l) {
      std::printf("  %9.4f ms  %-12s %-40s %s\n", percentile(layer_runs[l], 50),
                  npas_model_layer_op(model, l), npas_model_layer_kernel(model, l),
                  npas_model_layer_name(model, l));
    }
  }
  npas_model_destroy(model);
  return 0;
}
