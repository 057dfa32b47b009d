// Runs one layer kernel on raw float32 files: the executable side of the kernel test harness
// for targets whose libraries cannot be loaded into the test process (arm64 under qemu).
//
//   kernel_driver DIR
//
// DIR/spec.txt, one item per line, in LayerArgs order:
//   threads T1 T2 ...     thread counts to run at, in turn
//   scratch BYTES         scratch bytes per thread
//   in N | w N | out N    an input / weight / output of N floats
// Inputs are DIR/in_<i>.bin and DIR/w_<i>.bin; outputs go to DIR/out_<T>_<i>.bin.
//
// Every buffer sits between guard zones of a sentinel; outputs start as NaN and scratch is NaN
// (a kernel must not read what it did not write). A write into a guard zone or a short file
// is reported on stderr with exit status 3. The kernel is linked in as npas_harness_kernel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "npas/kernel_abi.h"
#include "npas/threadpool.h"

extern "C" void npas_harness_kernel(const npas::LayerArgs* args);

namespace {

constexpr std::size_t kGuard = 256;  // floats of sentinel on each side
const std::uint32_t kSentinel = 0x8029fa1du;  // a denormal no kernel computes by accident

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "kernel_driver: %s\n", what.c_str());
  std::exit(3);
}

// n floats, 64-byte aligned, between two guard zones.
class Buffer {
 public:
  explicit Buffer(std::size_t n) : n_(n) {
    raw_.reset(static_cast<float*>(std::aligned_alloc(64, ((n + 2 * kGuard) * 4 + 63) / 64 * 64)));
    if (!raw_) fail("out of memory");
    for (std::size_t i = 0; i < n + 2 * kGuard; ++i) std::memcpy(raw_.get() + i, &kSentinel, 4);
  }
  float* data() { return raw_.get() + kGuard; }
  std::size_t size() const { return n_; }
  void fill(float v) {
    for (std::size_t i = 0; i < n_; ++i) data()[i] = v;
  }
  void check(const std::string& what) const {
    for (std::size_t i = 0; i < kGuard; ++i) {
      std::uint32_t a, b;
      std::memcpy(&a, raw_.get() + i, 4);
      std::memcpy(&b, raw_.get() + kGuard + n_ + i, 4);
      if (a != kSentinel) fail("kernel wrote before the start of " + what);
      if (b != kSentinel) fail("kernel wrote past the end of " + what);
    }
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::size_t n_;
  std::unique_ptr<float, Free> raw_;
};

void read_file(const std::string& path, Buffer* b) {
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char*>(b->data()), static_cast<std::streamsize>(b->size() * 4));
  if (!f || f.gcount() != static_cast<std::streamsize>(b->size() * 4)) fail("short read: " + path);
}

void write_file(const std::string& path, const Buffer& b, const float* data) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(b.size() * 4));
  if (!f) fail("cannot write " + path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) fail("usage: kernel_driver DIR");
  const std::string dir = argv[1];
  std::ifstream spec(dir + "/spec.txt");
  if (!spec) fail("no " + dir + "/spec.txt");
  std::vector<int> threads;
  std::size_t scratch_bytes = 0;
  std::vector<std::unique_ptr<Buffer>> ins, ws, outs;
  std::string line;
  while (std::getline(spec, line)) {
    std::istringstream ls(line);
    std::string key;
    ls >> key;
    if (key == "threads") {
      for (int t; ls >> t;) threads.push_back(t);
    } else if (key == "scratch") {
      ls >> scratch_bytes;
    } else if (key == "in" || key == "w" || key == "out") {
      std::size_t n = 0;
      ls >> n;
      auto& list = key == "in" ? ins : key == "w" ? ws : outs;
      list.emplace_back(new Buffer(n));
      if (key != "out") {
        read_file(dir + "/" + key + "_" + std::to_string(list.size() - 1) + ".bin",
                  list.back().get());
      }
    } else if (!key.empty()) {
      fail("bad spec line: " + line);
    }
  }
  if (ins.size() > npas::kMaxLayerInputs || ws.size() > npas::kMaxLayerWeights ||
      outs.size() > npas::kMaxLayerOutputs) {
    fail("too many buffers for LayerArgs");
  }
  for (int t : threads) {
    npas::ThreadPool pool(t);
    Buffer scratch(std::max<std::size_t>(1, t * scratch_bytes / 4));
    scratch.fill(std::nanf(""));
    npas::LayerArgs args{};
    for (std::size_t i = 0; i < ins.size(); ++i) args.in[i] = ins[i]->data();
    for (std::size_t i = 0; i < ws.size(); ++i) args.w[i] = ws[i]->data();
    for (std::size_t i = 0; i < outs.size(); ++i) {
      outs[i]->fill(std::nanf(""));
      args.out[i] = outs[i]->data();
    }
    args.scratch = scratch.data();
    args.scratch_bytes_per_thread = scratch_bytes;
    args.pool = &pool;
    npas_harness_kernel(&args);
    scratch.check("scratch");
    for (std::size_t i = 0; i < ins.size(); ++i) ins[i]->check("input " + std::to_string(i));
    for (std::size_t i = 0; i < outs.size(); ++i) {
      outs[i]->check("output " + std::to_string(i));
      write_file(dir + "/out_" + std::to_string(t) + "_" + std::to_string(i) + ".bin", *outs[i],
                 outs[i]->data());
    }
  }
  return 0;
}
